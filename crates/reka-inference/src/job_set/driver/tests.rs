use super::*;

fn item(id: &str, status: JobStatus, created: DateTime<Utc>) -> RequestItem {
    RequestItem {
        capability: None,
        completed_at: None,
        created_at: Some(created),
        endpoint_id: None,
        error: None,
        input: None,
        metrics: None,
        model_id: None,
        output: None,
        request_id: id.to_owned(),
        status,
        updated_at: None,
    }
}

/// Two jobs of one endpoint in a set: the one ahead is seen finished
/// by a sweep while the other is queued, so the other's start is
/// planned there; what the end of that job says of the plan is kept.
#[test]
fn a_finish_a_sweep_shows_places_the_start_of_the_job_queued_behind() {
    let client = crate::Client::builder()
        .api_key("k")
        .base_url("http://127.0.0.1:9")
        .build()
        .unwrap();
    let mut set = client.job_set();
    let http = set.http.clone();
    let endpoint: Endpoint = "m/text-to-image".parse().unwrap();
    for _ in 0..3 {
        http.waits().estimates.record(endpoint.as_str(), 30.0);
    }
    let t0 = Instant::now();
    let secs = Duration::from_secs;
    let ids = [
        "0193f6a2-7c1e-7d2b-9f3a-1b2c3d4e5f60",
        "0193f6a2-7c1e-7d2b-9f3a-1b2c3d4e5f61",
    ];
    for id in ids {
        set.push(Job::new(
            http.clone(),
            id.to_owned(),
            Some(endpoint.clone()),
            Some(t0),
        ));
    }
    let mut driver = Driver::new(set, Arc::new(Inbox::default()));
    let created = Utc::now();
    let mut looked = HashSet::new();
    let (ahead, behind) = (ids[0], ids[1]);
    driver.observe_item(
        item(ahead, JobStatus::InProgress, created),
        t0 + secs(1),
        &mut looked,
    );
    driver.observe_item(
        item(behind, JobStatus::InQueue, created),
        t0 + secs(1),
        &mut looked,
    );
    // The job ahead ended 2 s in (by the server's clock, which runs
    // with this one: `created_at` is the submit).
    let mut done = item(ahead, JobStatus::Completed, created);
    done.completed_at = Some(created + chrono::TimeDelta::seconds(2));
    driver.observe_item(done, t0 + secs(2), &mut looked);
    driver.observe_item(
        item(behind, JobStatus::InProgress, created),
        t0 + secs(3),
        &mut looked,
    );
    let p = driver.pending.get(&1).unwrap();
    let starts = p.tracker.schedule().planned_starts();
    assert_eq!(starts.len(), 1, "{starts:?}");
    // At the server's `completed_at`, kept inside the span between the
    // two sweeps that saw the job ahead running and done.
    let at = starts[0].0;
    assert!(at > t0 + secs(1) && at <= t0 + secs(2), "{:?}", at - t0);
    // Its record says it ran 30 s and was done by 33 s: started at 3 s
    // at the latest, after that finish. Two runs of 32.9 s said it had
    // started before it: plans from finishes stop on this endpoint.
    let seen = driver.finishes.get(&endpoint).unwrap().clone();
    let p = driver.pending.get_mut(&1).unwrap();
    note_finish(p, None, t0 + secs(33));
    check_planned_start(&http, p, Some(30.0));
    assert!(!seen.within((t0 + secs(1), t0 + secs(3))).is_empty());
    assert_eq!(
        seen.estimate(),
        http.waits().estimates.get(endpoint.as_str())
    );
    check_planned_start(&http, p, Some(32.9));
    check_planned_start(&http, p, Some(32.9));
    assert!(seen.within((t0 + secs(1), t0 + secs(3))).is_empty());
}

/// A driver following `n` jobs of one endpoint (`job-00000`, ...),
/// submitted by this process and none placed yet.
fn driver_with(n: usize) -> Driver {
    let client = crate::Client::builder()
        .api_key("k")
        .base_url("http://127.0.0.1:9")
        .build()
        .unwrap();
    let mut set = client.job_set();
    let http = set.http.clone();
    let endpoint: Endpoint = "m/text-to-image".parse().unwrap();
    let t0 = Instant::now();
    for i in 0..n {
        set.push(Job::new(
            http.clone(),
            format!("job-{i:05}"),
            Some(endpoint.clone()),
            Some(t0),
        ));
    }
    Driver::new(set, Arc::new(Inbox::default()))
}

/// Places the driver's jobs at `created_at` = `base` + the given
/// seconds (`None`: not seen by a sweep yet) and cuts its chunks.
fn place(driver: &mut Driver, base: DateTime<Utc>, created: &[Option<i64>]) {
    for (index, at) in created.iter().enumerate() {
        driver.pending.get_mut(&index).unwrap().created =
            at.map(|s| base + chrono::TimeDelta::seconds(s));
    }
    driver.rebuild_chunks();
}

#[test]
fn placed_jobs_are_cut_into_chunks_of_about_a_page_on_strict_time_boundaries() {
    let base = Utc::now();
    let distinct = |n: i64| (0..n).map(Some).collect::<Vec<_>>();
    // Jobs 95 to 110 share one time: the page's end falls among them.
    let mut straddling = distinct(95);
    straddling.extend(std::iter::repeat_n(Some(95), 16));
    straddling.extend((111..150).map(Some));
    let mut some_unplaced = distinct(10);
    some_unplaced.extend([None, None, None]);
    // (case, each job's created_at in seconds, the jobs in each chunk)
    type Case = (&'static str, Vec<Option<i64>>, Vec<usize>);
    let cases: Vec<Case> = vec![
        ("no job placed", vec![None; 5], vec![]),
        ("less than a page", distinct(5), vec![5]),
        ("exactly a page", distinct(100), vec![100]),
        ("a page and one", distinct(101), vec![100, 1]),
        ("two and a half pages", distinct(250), vec![100, 100, 50]),
        ("equal times across a page's end", straddling, vec![111, 39]),
        ("every job at one time", vec![Some(7); 230], vec![230]),
        ("jobs not placed are left out", some_unplaced, vec![10]),
    ];
    for (case, created, sizes) in cases {
        let mut driver = driver_with(created.len());
        place(&mut driver, base, &created);
        let got: Vec<usize> = driver.chunks.iter().map(|c| c.ids.len()).collect();
        assert_eq!(got, sizes, "{case}");
        // Each chunk ends where the next starts; the last is open.
        for pair in driver.chunks.windows(2) {
            assert!(pair[0].start < pair[1].start, "{case}");
            assert_eq!(pair[0].end, Some(pair[1].start), "{case}");
        }
        if let Some(last) = driver.chunks.last() {
            assert_eq!(last.end, None, "{case}");
        }
        // Every placed job is in exactly one chunk, inside its range.
        let mut seen = HashSet::new();
        for chunk in &driver.chunks {
            for id in &chunk.ids {
                assert!(seen.insert(id.clone()), "{case}: {id} twice");
                let index: usize = id["job-".len()..].parse().unwrap();
                let at = driver.pending[&index].created.unwrap();
                assert!(at >= chunk.start, "{case}: {id}");
                assert!(chunk.end.is_none_or(|end| at < end), "{case}: {id}");
            }
        }
        assert_eq!(
            seen.len(),
            created.iter().filter(|c| c.is_some()).count(),
            "{case}"
        );
    }
}

#[test]
fn a_job_a_sweep_should_have_shown_is_counted_missed_then_polled_on_its_own() {
    let base = Utc::now();
    let chunk = (Some(base), None);
    let elsewhere = (Some(base - chrono::TimeDelta::hours(1)), Some(base));
    // (case, placed, shown by the sweep, the placing read went to its
    // end, the ranges read, misses before, already polled on its own)
    // -> (misses after, polled on its own after)
    type Case = (&'static str, bool, bool, bool, Vec<CreatedRange>, u32, bool);
    let cases: Vec<(Case, (u32, bool))> = vec![
        (
            ("shown", true, true, true, vec![chunk], 2, false),
            (2, false),
        ),
        (
            (
                "its chunk read without it",
                true,
                false,
                false,
                vec![chunk],
                0,
                false,
            ),
            (1, false),
        ),
        (
            (
                "another chunk read",
                true,
                false,
                false,
                vec![elsewhere],
                0,
                false,
            ),
            (0, false),
        ),
        (
            ("no chunk read", true, false, true, vec![], 1, false),
            (1, false),
        ),
        (
            (
                "unplaced, the placing read whole",
                false,
                false,
                true,
                vec![],
                0,
                false,
            ),
            (1, false),
        ),
        (
            (
                "unplaced, the placing cut short",
                false,
                false,
                false,
                vec![],
                0,
                false,
            ),
            (0, false),
        ),
        (
            (
                "missed once too often",
                true,
                false,
                false,
                vec![chunk],
                3,
                false,
            ),
            (4, true),
        ),
        (
            (
                "already on its own",
                true,
                false,
                true,
                vec![chunk],
                0,
                true,
            ),
            (0, true),
        ),
    ];
    for ((case, placed, shown, placing_whole, read, before, own), (after, own_after)) in cases {
        let mut driver = driver_with(1);
        place(&mut driver, base, &[placed.then_some(0)]);
        let p = driver.pending.get_mut(&0).unwrap();
        p.misses = before;
        p.own_polling = own;
        let id = p.tracker.id().to_owned();
        let looked: HashSet<String> = shown.then(|| id.clone()).into_iter().collect();
        let unplaced: HashSet<String> = (!placed).then(|| id.clone()).into_iter().collect();
        driver.count_misses(&looked, &unplaced, placing_whole, &read);
        let p = &driver.pending[&0];
        assert_eq!((p.misses, p.own_polling), (after, own_after), "{case}");
    }
}

#[test]
fn a_server_time_lands_on_this_clock_inside_the_span_it_is_known_in() {
    let now = Instant::now();
    let utc_now = Utc::now();
    let span = (now - Duration::from_secs(10), now);
    let secs = chrono::TimeDelta::seconds;
    // The server's clock is 2 s ahead: its "1 s ago" was 3 s ago here.
    let at = on_this_clock(utc_now - secs(1), secs(2), utc_now, span);
    assert_eq!(now - at, Duration::from_secs(3));
    // Times the span rules out are brought back into it.
    assert_eq!(
        on_this_clock(utc_now - secs(60), secs(0), utc_now, span),
        span.0
    );
    assert_eq!(
        on_this_clock(utc_now + secs(60), secs(0), utc_now, span),
        now
    );
    // A hostile server's dates and clock never panic.
    for server_at in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
        for ahead in [chrono::TimeDelta::MIN, chrono::TimeDelta::MAX, secs(0)] {
            let at = on_this_clock(server_at, ahead, utc_now, span);
            assert!(at >= span.0 && at <= now);
        }
    }
}
