//! The journal's work on the batch's lines: loading them, adding the
//! input's items, claiming lines under a lease with `FOR UPDATE SKIP
//! LOCKED`, every write fenced by the line's attempt counter, the budget's
//! reservations and settlements in one statement with the write, and
//! handing lines back.

use super::*;

fn state_name(state: EntryState) -> &'static str {
    match state {
        EntryState::Submitting => "submitting",
        EntryState::Submitted => "submitted",
        EntryState::Finished => "finished",
        EntryState::Done => "done",
        EntryState::Reported => "reported",
    }
}

/// An entry as JSON for the database.
fn entry_json(entry: &JournalEntry) -> Result<Value> {
    serde_json::to_value(entry).map_err(|e| Error::Journal(format!("cannot encode an entry: {e}")))
}

/// The entry of a `key, entry` row.
fn entry_of_row(row: &tokio_postgres::Row) -> Result<JournalEntry> {
    let key: String = row.get(0);
    serde_json::from_value(row.get::<_, Value>(1)).map_err(|e| {
        Error::Journal(format!(
            "the journal's entry for {key:?} is unreadable: {e}"
        ))
    })
}

impl Journal for PostgresJournal {
    /// Every entry of the batch (lines no worker started have none).
    async fn load(&self) -> Result<Vec<JournalEntry>> {
        let batch = self.inner.batch.clone();
        let rows = self
            .inner
            .call("read the batch", move |c| {
                let batch = batch.clone();
                async move {
                    Ok(c.query(
                        "SELECT key, entry FROM reka_batch_lines
                         WHERE batch = $1 AND entry IS NOT NULL ORDER BY seq",
                        &[&batch],
                    )
                    .await?)
                }
            })
            .await?;
        rows.iter().map(entry_of_row).collect()
    }

    /// By key, in the database's collation (the primary key's order).
    async fn load_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<JournalEntry>> {
        let batch = self.inner.batch.clone();
        let after = after.map(str::to_owned);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .inner
            .call("read the batch", move |c| {
                let (batch, after) = (batch.clone(), after.clone());
                async move {
                    Ok(c.query(
                        "SELECT key, entry FROM reka_batch_lines
                         WHERE batch = $1 AND entry IS NOT NULL AND ($2::text IS NULL OR key > $2)
                         ORDER BY key LIMIT $3",
                        &[&batch, &after, &limit],
                    )
                    .await?)
                }
            })
            .await?;
        rows.iter().map(entry_of_row).collect()
    }

    /// Writes the entry if this worker still holds its line (its fencing
    /// token matches), else [`Error::LeaseLost`]. The first save of a
    /// finished entry settles its line's reservation to its price.
    async fn save(&self, entry: &JournalEntry) -> Result<()> {
        let inner = &self.inner;
        let Some(hold) = inner.hold(&entry.key) else {
            return Err(Error::LeaseLost {
                key: entry.key.clone(),
            });
        };
        let json = entry_json(entry)?;
        let state = state_name(entry.state);
        let ended = !matches!(entry.state, EntryState::Submitting | EntryState::Submitted);
        let settle = ended && !hold.settled;
        let price = match entry.price_usd.filter(|p| p.is_finite() && *p >= 0.0) {
            Some(p) => p,
            // A job was made and said no price: it cost its estimate.
            None if entry.request_id.is_some() => hold.reserved_usd,
            None => 0.0,
        };
        let (batch, key) = (inner.batch.clone(), entry.key.clone());
        let written = inner
            .call("write the journal", move |c| {
                let (batch, key, json) = (batch.clone(), key.clone(), json.clone());
                async move {
                    let rows = if settle {
                        let statement = c
                            .prepare_cached(
                                // `before` reads the line as it was when
                                // the statement began (no lock: the update
                                // below takes it, and a row locked by this
                                // statement would be skipped): a try of
                                // this call that was applied (its answer
                                // lost) has ended it, and it is not
                                // settled twice.
                                "WITH before AS (
                                     SELECT state FROM reka_batch_lines
                                      WHERE batch = $1 AND key = $2 AND attempt = $3),
                                 line AS (
                                     UPDATE reka_batch_lines
                                        SET entry = $4, state = $5, reserved_usd = 0, updated_at = now()
                                      WHERE batch = $1 AND key = $2 AND attempt = $3 RETURNING 1),
                                 settled AS (
                                     UPDATE reka_batches
                                        SET reserved_usd = greatest(reserved_usd - $6, 0),
                                            spent_usd = spent_usd + $7
                                      WHERE name = $1 AND EXISTS (SELECT 1 FROM line)
                                        AND EXISTS (SELECT 1 FROM before
                                                     WHERE state IN ('new', 'submitting', 'submitted')))
                                 SELECT count(*) FROM line",
                            )
                            .await?;
                        let row = c
                            .query_one(
                                &statement,
                                &[&batch, &key, &hold.attempt, &json, &state, &hold.reserved_usd, &price],
                            )
                            .await?;
                        u64::try_from(row.get::<_, i64>(0)).unwrap_or(0)
                    } else {
                        let statement = c
                            .prepare_cached(
                                "UPDATE reka_batch_lines
                                    SET entry = $4, state = $5, updated_at = now()
                                  WHERE batch = $1 AND key = $2 AND attempt = $3",
                            )
                            .await?;
                        c.execute(&statement, &[&batch, &key, &hold.attempt, &json, &state])
                            .await?
                    };
                    Ok(rows)
                }
            })
            .await?;
        let mut holds = inner.lock();
        if written == 0 {
            holds.remove(&entry.key);
            return Err(Error::LeaseLost {
                key: entry.key.clone(),
            });
        }
        if let Some(h) = holds.get_mut(&entry.key) {
            if settle {
                h.reserved_usd = 0.0;
                h.settled = true;
            }
            h.terminal = matches!(entry.state, EntryState::Done | EntryState::Reported);
        }
        Ok(())
    }

    fn is_shared(&self) -> bool {
        true
    }

    async fn add_items(&self, items: &[BatchItem], first_seq: u64) -> Result<Vec<String>> {
        let inner = &self.inner;
        let mut keys = Vec::with_capacity(items.len());
        let mut seqs = Vec::with_capacity(items.len());
        let mut fingerprints = Vec::with_capacity(items.len());
        let mut stored = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            keys.push(item.key.clone());
            let seq = first_seq.saturating_add(i as u64);
            seqs.push(i64::try_from(seq).unwrap_or(i64::MAX));
            fingerprints.push(item.fingerprint.clone());
            let value = serde_json::to_value(StoredItem {
                endpoint: item.endpoint.as_str().to_owned(),
                input: item.input.clone(),
                files: item.files.clone(),
                idempotency_key: item.idempotency_key.clone(),
            })
            .map_err(|e| Error::Journal(format!("cannot encode an item: {e}")))?;
            stored.push(value);
        }
        let (batch, worker) = (inner.batch.clone(), inner.worker.clone());
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        let changed = inner
            .call("add the items", move |c| {
                let (batch, worker, host) = (batch.clone(), worker.clone(), host.clone());
                let (keys, seqs, fingerprints, stored) =
                    (keys.clone(), seqs.clone(), fingerprints.clone(), stored.clone());
                async move {
                    let rows = c
                        .query(
                            "WITH b AS (INSERT INTO reka_batches (name) VALUES ($1)
                                        ON CONFLICT (name) DO NOTHING),
                                  w AS (INSERT INTO reka_batch_workers (id, batch, host)
                                        VALUES ($2, $1, $3)
                                        ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()),
                                  given AS (SELECT * FROM unnest($4::text[], $5::int8[], $6::text[], $7::jsonb[])
                                            AS t(key, seq, fingerprint, item)),
                                  added AS (INSERT INTO reka_batch_lines (batch, key, seq, fingerprint, item)
                                            SELECT $1, key, seq, fingerprint, item FROM given
                                            ON CONFLICT (batch, key) DO NOTHING RETURNING key)
                             SELECT g.key FROM given g
                               JOIN reka_batch_lines l ON l.batch = $1 AND l.key = g.key
                              WHERE l.fingerprint <> g.fingerprint",
                            &[&batch, &worker, &host, &keys, &seqs, &fingerprints, &stored],
                        )
                        .await?;
                    // The select reads the lines as they were before the
                    // statement: those just added are not compared.
                    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>())
                }
            })
            .await?;
        inner.registered.store(true, Ordering::Relaxed);
        Ok(changed)
    }

    async fn claim(&self, max: usize) -> Result<Claim> {
        let inner = &self.inner;
        let (batch, worker) = (inner.batch.clone(), inner.worker.clone());
        let lease = lease_ms(&inner.options) as f64;
        let limit = i64::try_from(max.max(1)).unwrap_or(1);
        let rows = inner
            .call("claim lines", move |c| {
                let (batch, worker) = (batch.clone(), worker.clone());
                async move {
                    let statement = c
                        .prepare_cached(&format!(
                            "WITH picked AS (
                                 SELECT key FROM reka_batch_lines
                                  WHERE batch = $1 AND state NOT IN {TERMINAL}
                                    AND (owner IS NULL OR lease_until < now())
                                  ORDER BY seq LIMIT $2
                                  FOR UPDATE SKIP LOCKED)
                             UPDATE reka_batch_lines l
                                SET owner = $3, attempt = l.attempt + 1,
                                    lease_until = now() + $4::float8 * interval '1 millisecond'
                               FROM picked
                              WHERE l.batch = $1 AND l.key = picked.key
                             RETURNING l.key, l.fingerprint, l.item, l.entry, l.attempt, l.reserved_usd"
                        ))
                        .await?;
                    Ok(c.query(&statement, &[&batch, &limit, &worker, &lease]).await?)
                }
            })
            .await?;
        if rows.is_empty() {
            return self.nothing_to_claim().await;
        }
        let mut lines = Vec::with_capacity(rows.len());
        let mut holds = Vec::with_capacity(rows.len());
        for row in &rows {
            let key: String = row.get(0);
            let fingerprint: String = row.get(1);
            let stored: StoredItem =
                serde_json::from_value(row.get::<_, Value>(2)).map_err(|e| {
                    Error::Journal(format!("the batch's item {key:?} is unreadable: {e}"))
                })?;
            let entry: Option<JournalEntry> = row
                .get::<_, Option<Value>>(3)
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| {
                    Error::Journal(format!(
                        "the journal's entry for {key:?} is unreadable: {e}"
                    ))
                })?;
            let hold = Hold {
                attempt: row.get(4),
                reserved_usd: row.get(5),
                settled: entry.as_ref().is_some_and(|e| {
                    !matches!(e.state, EntryState::Submitting | EntryState::Submitted)
                }),
                terminal: false,
            };
            let item = BatchItem {
                key: key.clone(),
                endpoint: Endpoint::new(stored.endpoint)?,
                input: stored.input,
                files: stored.files,
                fingerprint,
                idempotency_key: stored.idempotency_key,
            };
            holds.push((key, hold));
            lines.push(ClaimedLine::new(item, entry));
        }
        inner
            .claimed
            .fetch_add(lines.len() as u64, Ordering::Relaxed);
        inner.lock().extend(holds);
        Ok(Claim::Lines(lines))
    }

    async fn save_reserving(
        &self,
        entry: &JournalEntry,
        estimate_usd: f64,
        budget_usd: Option<f64>,
    ) -> Result<bool> {
        let inner = &self.inner;
        let Some(hold) = inner.hold(&entry.key) else {
            return Err(Error::LeaseLost {
                key: entry.key.clone(),
            });
        };
        let estimate = if estimate_usd.is_finite() && estimate_usd > 0.0 {
            estimate_usd
        } else {
            0.0
        };
        let budget = budget_usd.filter(|b| b.is_finite());
        let json = entry_json(entry)?;
        let (batch, key) = (inner.batch.clone(), entry.key.clone());
        let (reserved, attempt, saved_key) = inner
            .call("reserve from the budget", move |c| {
                let (batch, key, json) = (batch.clone(), key.clone(), json.clone());
                async move {
                    // Both rows locked before either is changed: the check
                    // of the budget sees every other worker's reservation,
                    // and the line cannot pass to another worker between
                    // the check and the write.
                    let statement = c
                        .prepare_cached(
                            "WITH ok AS (
                                 SELECT b.name FROM reka_batches b
                                   JOIN reka_batch_lines l ON l.batch = b.name
                                  WHERE b.name = $1 AND l.key = $2 AND l.attempt = $3
                                    AND l.entry IS NULL
                                    AND ($6::float8 IS NULL
                                         OR b.spent_usd + b.reserved_usd + $5 <= $6 + 1e-9)
                                  FOR UPDATE OF b, l),
                             b AS (UPDATE reka_batches
                                      SET reserved_usd = reserved_usd + $5, budget_usd = $6
                                    WHERE name IN (SELECT name FROM ok) RETURNING 1),
                             l AS (UPDATE reka_batch_lines
                                      SET entry = $4, state = 'submitting', reserved_usd = $5,
                                          updated_at = now()
                                    WHERE batch = $1 AND key = $2 AND attempt = $3
                                      AND EXISTS (SELECT 1 FROM ok) RETURNING 1)
                             SELECT (SELECT count(*) FROM l),
                                    line.attempt, line.entry ->> 'idempotency_key'
                               FROM reka_batch_lines line
                              WHERE line.batch = $1 AND line.key = $2",
                        )
                        .await?;
                    let row = c
                        .query_opt(
                            &statement,
                            &[&batch, &key, &hold.attempt, &json, &estimate, &budget],
                        )
                        .await?;
                    Ok(row.map(|r| {
                        (
                            r.get::<_, i64>(0),
                            r.get::<_, i64>(1),
                            r.get::<_, Option<String>>(2),
                        )
                    }))
                }
            })
            .await?
            .unwrap_or((0, -1, None));
        // The final select reads the line as it was before the statement.
        // An earlier try of this very call that was applied (its answer
        // lost) left the entry with this key: the reservation is made.
        let applied = reserved == 1
            || (attempt == hold.attempt
                && saved_key.as_deref() == Some(entry.idempotency_key.as_str()));
        let mut lost = attempt != hold.attempt;
        if !applied && !lost {
            // Refused: by the budget, or because the line passed to
            // another worker while the statement waited for its lock.
            lost = self.current_attempt(&entry.key).await? != Some(hold.attempt);
        }
        let mut holds = inner.lock();
        if lost && !applied {
            holds.remove(&entry.key);
            return Err(Error::LeaseLost {
                key: entry.key.clone(),
            });
        }
        if applied && let Some(h) = holds.get_mut(&entry.key) {
            h.reserved_usd = estimate;
        }
        Ok(applied)
    }

    async fn release(&self) -> Result<()> {
        let inner = &self.inner;
        self.heartbeat.abort();
        inner.lock().clear();
        if !inner.registered.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let (batch, worker) = (inner.batch.clone(), inner.worker.clone());
        inner
            .call("give back the lines", move |c| {
                let (batch, worker) = (batch.clone(), worker.clone());
                async move {
                    c.execute(
                        "WITH w AS (DELETE FROM reka_batch_workers WHERE id = $2)
                         UPDATE reka_batch_lines SET owner = NULL, lease_until = NULL
                          WHERE batch = $1 AND owner = $2",
                        &[&batch, &worker],
                    )
                    .await?;
                    Ok(())
                }
            })
            .await
    }
}

impl PostgresJournal {
    /// The line's fencing token as the database has it now.
    async fn current_attempt(&self, key: &str) -> Result<Option<i64>> {
        let (batch, key) = (self.inner.batch.clone(), key.to_owned());
        self.inner
            .call("read a line", move |c| {
                let (batch, key) = (batch.clone(), key.clone());
                async move {
                    Ok(c.query_opt(
                        "SELECT attempt FROM reka_batch_lines WHERE batch = $1 AND key = $2",
                        &[&batch, &key],
                    )
                    .await?
                    .map(|r| r.get::<_, i64>(0)))
                }
            })
            .await
    }

    /// A claim found nothing: wait while other workers hold unfinished
    /// lines (until the first of their leases could lapse, or a second),
    /// else finished.
    async fn nothing_to_claim(&self) -> Result<Claim> {
        let inner = &self.inner;
        let (batch, worker) = (inner.batch.clone(), inner.worker.clone());
        let row = inner
            .call("look at the batch", move |c| {
                let (batch, worker) = (batch.clone(), worker.clone());
                async move {
                    Ok(c.query_one(
                        &format!(
                            "SELECT count(*) FILTER (WHERE owner IS DISTINCT FROM $2),
                                    extract(epoch FROM min(lease_until - now())
                                            FILTER (WHERE owner IS DISTINCT FROM $2))::float8
                               FROM reka_batch_lines
                              WHERE batch = $1 AND state NOT IN {TERMINAL}"
                        ),
                        &[&batch, &worker],
                    )
                    .await?)
                }
            })
            .await?;
        let others: i64 = row.get(0);
        if others == 0 {
            return Ok(Claim::Finished);
        }
        let lease = inner.options.lease;
        let wait = row
            .get::<_, Option<f64>>(1)
            .filter(|s| s.is_finite() && *s > 0.0)
            .map_or(Duration::from_millis(50), |s| {
                Duration::from_secs_f64(s.min(lease.as_secs_f64())) + Duration::from_millis(20)
            });
        // Looked at again within a second whatever the leases: the
        // others' lines may all end long before a lease could lapse, and
        // this worker then ends too.
        Ok(Claim::Wait(
            wait.min(lease / 2)
                .min(Duration::from_secs(1))
                .max(Duration::from_millis(50)),
        ))
    }
}
