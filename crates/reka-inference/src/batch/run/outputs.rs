//! A finished job's end: its entry saved, its files downloaded into the
//! batch's directory (again when they went missing), then its report.

use super::*;

impl<J: Journal, F: FnMut(BatchEvent<'_>) -> Result<()> + Send> Run<J, F> {
    /// Saves a finished entry, then its files (or reports it when it has
    /// none to save).
    pub(super) async fn finish(&mut self, key: &str) -> Result<()> {
        let Some(entry) = self.entries.get(key).cloned() else {
            return Ok(());
        };
        // A shared journal keeps three writes per line (the key, the
        // request id, the report): a line taken over before its report
        // is followed and saved again from its job, which the service
        // keeps.
        if !self.shared && !self.save(&entry).await? {
            return Ok(());
        }
        (self.on_event)(BatchEvent::Finished(&entry))?;
        let has_files = entry.status.as_deref() == Some("COMPLETED")
            && self.options.download_dir.is_some()
            && entry
                .output
                .as_ref()
                .is_some_and(|o| !crate::media::find_media(o).is_empty());
        if has_files {
            self.start_download(&entry);
            return Ok(());
        }
        self.mark_done(key).await
    }

    /// Saves an entry's files into `<download dir>/<key>/`; an entry whose
    /// output the journal does not hold (journals of earlier versions
    /// dropped it once reported) has its record fetched first.
    pub(super) fn start_download(&mut self, entry: &JournalEntry) {
        let key = entry.key.clone();
        let request_id = entry.request_id.clone();
        let Some(dir) = &self.options.download_dir else {
            // Nothing to save into: done as it is.
            self.downloads
                .push(Box::pin(async move { (key, request_id, Ok(Vec::new())) }));
            return;
        };
        let dir = dir.join(&entry.key);
        let http = self.http.clone();
        let output = entry.output.clone();
        let endpoint = Endpoint::new(entry.endpoint.clone()).ok();
        self.downloads.push(Box::pin(async move {
            let id = request_id.clone().unwrap_or_default();
            let output = match output {
                Some(output) => Ok(output),
                None => {
                    let job = Job::new(http.clone(), id.clone(), endpoint, None);
                    job.result()
                        .await
                        .map(|record| JobOutput::from_record(record).output)
                }
            };
            let saved = match output {
                Ok(output) => {
                    let output = JobOutput {
                        request_id: id,
                        output,
                        metrics: None,
                    };
                    download_outputs(&http, &output, &dir, |_, _, _| {}).await
                }
                Err(e) => Err(e),
            };
            (key, request_id, saved)
        }));
    }

    /// An item's files were saved (or not).
    pub(super) async fn downloaded(
        &mut self,
        key: &str,
        request_id: Option<String>,
        saved: Result<Vec<PathBuf>>,
    ) -> Result<()> {
        let Some(entry) = self.entries.get_mut(key) else {
            return Ok(());
        };
        if entry.request_id != request_id {
            // The download of a job an item's rerun replaced.
            return Ok(());
        }
        match saved {
            Ok(paths) => {
                entry.files = paths.iter().map(|p| p.display().to_string()).collect();
            }
            // The file is gone (results expire): nothing will bring it back.
            Err(e) if matches!(e.status().map(|s| s.as_u16()), Some(403 | 404 | 410)) => {
                entry.error = Some(format!("its files could not be saved (expired?): {e}"));
            }
            Err(e) => {
                // Perhaps passing: the next run tries again.
                let reason = format!("its files could not be saved: {e}");
                return (self.on_event)(BatchEvent::Unfinished { key, reason });
            }
        }
        self.mark_done(key).await
    }

    pub(super) async fn mark_done(&mut self, key: &str) -> Result<()> {
        let Some(entry) = self.entries.get_mut(key) else {
            return Ok(());
        };
        entry.state = EntryState::Done;
        let entry = entry.clone();
        // Shared journals: see `finish`.
        if !self.shared && !self.save(&entry).await? {
            return Ok(());
        }
        self.report(key).await
    }

    /// Hands a done item to the caller, then marks it reported.
    pub(super) async fn report(&mut self, key: &str) -> Result<()> {
        let Some(entry) = self.entries.get_mut(key) else {
            return Ok(());
        };
        (self.on_event)(BatchEvent::Done(entry))?;
        entry.state = EntryState::Reported;
        self.reported += 1;
        let saved = entry.clone();
        // The journal keeps the output (a report made again, files saved
        // again); the memory keeps only what the counts need, so that it
        // does not grow with what the jobs made.
        entry.output = None;
        self.save(&saved).await.map(drop)
    }
}
