//! Modes (record, auto, replay, passthrough), single-flight, sequence policies, match rules, CI
//! verdicts, the control API, and latency/fault injection.

use std::path::Path;
use std::time::{Duration, Instant};

use ims_vcr::ProxyServer;
use ims_vcr::model::key::MatchRules;
use ims_vcr::proxy::realism::{Fault, Latency};
use ims_vcr::replay::tape::Sequence;

use crate::util::*;

async fn record_seed_and_polling(store: &Path) {
    let fake = FakeIms::start(FakeOptions::default()).await;
    let proxy = recorder(&fake, store).await;
    get(&image_url(&proxy, SEED_IMAGE_ID)).await;
    for _ in 0..3 {
        get(&image_url(&proxy, POLLING_IMAGE_ID)).await;
    }
    proxy.shutdown().await.unwrap();
    fake.stop().await;
}

#[tokio::test]
async fn auto_replays_what_is_recorded_and_records_what_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    record_seed_and_polling(&store).await;
    let fake = FakeIms::start(FakeOptions::default()).await;
    let proxy = ProxyServer::builder()
        .auto(upstream_for(&fake, dir.path()))
        .store(&store)
        .start()
        .await
        .unwrap();

    let hit = get(&image_url(&proxy, SEED_IMAGE_ID)).await;
    assert_eq!(hit.header("x-ims-vcr"), Some("hit"));
    let mut polled = Vec::new();
    for _ in 0..4 {
        polled.push(get(&image_url(&proxy, POLLING_IMAGE_ID)).await.json()["status"].clone());
    }
    assert_eq!(
        polled,
        ["queued", "saving", "active", "active"],
        "auto plays recordings in order"
    );
    assert!(
        fake.requests().is_empty(),
        "a hit never reaches the upstream"
    );
    let new = get(&image_url(&proxy, UNKNOWN_IMAGE_ID)).await;
    assert_eq!(
        (new.status, new.header("x-ims-vcr")),
        (404, Some("recorded"))
    );
    // Asked again in the session that recorded it: forwarded again (the image may have
    // changed meanwhile), its answer appended after the first.
    let again = get(&image_url(&proxy, UNKNOWN_IMAGE_ID)).await;
    assert_eq!(again.header("x-ims-vcr"), Some("recorded"));
    assert_eq!(again.body, new.body);
    assert_eq!(fake.requests().len(), 2);
    let summary = proxy.shutdown().await.unwrap();
    assert_eq!((summary.hits, summary.recorded), (5, 2));
    assert_eq!(summary.miss_count(), 0, "{summary}");
    assert_eq!(
        stored_answers(&store),
        6,
        "auto appends; the earlier recordings stay"
    );

    // The upstream gone: a request not recorded gets the 502, and counts as a miss too (the
    // summary, `--fail-on-miss`): neither a recording nor the upstream answered it.
    let gone = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let proxy = ProxyServer::builder()
        .auto(ims_vcr::UpstreamConfig::new(gone))
        .store(&store)
        .start()
        .await
        .unwrap();
    assert_eq!(
        get(&image_url(&proxy, SEED_IMAGE_ID))
            .await
            .header("x-ims-vcr"),
        Some("hit")
    );
    let unrecorded = get(&image_url(&proxy, "never-recorded")).await;
    assert_eq!(unrecorded.status, 502, "{}", unrecorded.text());
    let summary = proxy.shutdown().await.unwrap();
    assert_eq!(
        (summary.miss_count(), summary.upstream_errors),
        (1, 1),
        "{summary}"
    );
}

#[tokio::test]
async fn auto_makes_one_upstream_call_for_many_concurrent_identical_misses() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fake = FakeIms::start(FakeOptions {
        delay: Some(Duration::from_millis(300)),
        ..Default::default()
    })
    .await;
    let proxy = ProxyServer::builder()
        .auto(upstream_for(&fake, dir.path()))
        .store(&store)
        .start()
        .await
        .unwrap();
    let url = image_url(&proxy, SEED_IMAGE_ID);
    let replies = futures_join_all((0..24).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { get(&url).await })
    }))
    .await;
    for reply in &replies {
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json(), seed_image_json());
    }
    let recorded = replies
        .iter()
        .filter(|r| r.header("x-ims-vcr") == Some("recorded"))
        .count();
    assert_eq!(
        recorded, 1,
        "one leader records, the others are served its answer"
    );
    assert_eq!(fake.requests().len(), 1, "single-flight: one upstream call");
    proxy.shutdown().await.unwrap();
    // Each client takes its place among the request's answers (a copy of the one answer), so
    // a replay of the same 24 requests, `--sequence strict` too, serves each what it was served.
    assert_eq!(stored_answers(&store), 24, "a place per client");
}

async fn futures_join_all<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test]
async fn passthrough_forwards_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fake = FakeIms::start(FakeOptions::default()).await;
    let proxy = ProxyServer::builder()
        .passthrough(upstream_for(&fake, dir.path()))
        .store(&store)
        .start()
        .await
        .unwrap();
    for _ in 0..2 {
        let reply = get(&image_url(&proxy, SEED_IMAGE_ID)).await;
        assert_eq!(
            (reply.status, reply.header("x-ims-vcr")),
            (200, Some("forwarded"))
        );
    }
    assert_eq!(fake.requests().len(), 2);
    proxy.shutdown().await.unwrap();
    assert!(
        !store.exists(),
        "passthrough does not even create the store"
    );
}

#[tokio::test]
async fn strict_sequence_turns_past_the_end_into_a_miss_until_the_cursors_are_reset() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    record_seed_and_polling(&store).await;
    let replay = ProxyServer::builder()
        .replay()
        .store(&store)
        .sequence(Sequence::Strict)
        .start()
        .await
        .unwrap();
    let url = image_url(&replay, POLLING_IMAGE_ID);
    let mut seen = Vec::new();
    for _ in 0..4 {
        let reply = get(&url).await;
        seen.push(
            reply.json()["status"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    reply.json()["ims_vcr"]["reason"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                }),
        );
    }
    assert_eq!(seen, ["queued", "saving", "active", "sequence-exhausted"]);
    let reset = send(
        "POST",
        &format!("{}/__ims-vcr/reset", replay.uri()),
        &[],
        b"",
    )
    .await;
    assert_eq!(reset.status, 200);
    assert_eq!(get(&url).await.json()["status"], "queued");
}

#[tokio::test]
async fn match_rules_are_recorded_with_the_cassettes_and_used_at_replay() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fake = FakeIms::start(FakeOptions::default()).await;
    let rules = MatchRules {
        match_headers: vec!["x-project-id".into()],
        ignore_query: vec!["marker".into()],
        volatile: Default::default(),
        shift_time: Vec::new(),
    };
    let proxy = ProxyServer::builder()
        .record(upstream_for(&fake, dir.path()))
        .store(&store)
        .match_rules(rules.clone())
        .start()
        .await
        .unwrap();
    let list = format!("{}/v2/images?limit=1&marker=a", proxy.uri());
    let p1 = send("GET", &list, &[("x-project-id", "p1")], b"").await;
    send(
        "GET",
        &format!("{}/v2/images?owner=nobody", proxy.uri()),
        &[("x-project-id", "p2")],
        b"",
    )
    .await;
    proxy.shutdown().await.unwrap();
    fake.stop().await;

    let out = dir.path().join("out");
    export_store(&store, &out, None).unwrap();
    for (_, bytes) in all_files(&out) {
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            value["match"]["match_headers"],
            serde_json::json!(["x-project-id"])
        );
    }
    let replay = cassette_replayer(&out).await;
    let other_marker = format!("{}/v2/images?limit=1&marker=zzz", replay.uri());
    let hit = send("GET", &other_marker, &[("x-project-id", "p1")], b"").await;
    assert_eq!(hit.header("x-ims-vcr"), Some("hit"), "marker is ignored");
    assert_eq!(hit.body, p1.body);
    let miss = send("GET", &other_marker, &[("x-project-id", "p2")], b"").await;
    assert_eq!(
        miss.header("x-ims-vcr"),
        Some("miss"),
        "the project header takes part"
    );
    let diff = &miss.json()["ims_vcr"]["diff"];
    assert!(
        diff.as_array()
            .unwrap()
            .iter()
            .any(|d| d["part"] == "header" && d["name"] == "x-project-id"),
        "{diff}"
    );
}

/// A matched header whose value is not plain ASCII (`René`, as UTF-8) keys alike when recorded
/// and when asked again: the live key read such a value as absent, the stored one as text, so
/// it never replayed and `auto` recorded it again on every call.
#[tokio::test]
async fn a_matched_header_value_beyond_ascii_replays_from_the_store_and_from_cassettes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fake = FakeIms::start(FakeOptions::default()).await;
    let rules = MatchRules {
        match_headers: vec!["x-name".into()],
        ..MatchRules::default()
    };
    let proxy = ProxyServer::builder()
        .record(upstream_for(&fake, dir.path()))
        .store(&store)
        .match_rules(rules)
        .start()
        .await
        .unwrap();
    let url = |proxy: &ProxyServer| format!("{}/v2/images?limit=1", proxy.uri());
    let recorded = send("GET", &url(&proxy), &[("x-name", "René")], b"").await;
    assert_eq!(recorded.header("x-ims-vcr"), Some("recorded"));
    proxy.shutdown().await.unwrap();
    fake.stop().await;

    let replay = replayer(&store).await;
    let hit = send("GET", &url(&replay), &[("x-name", "René")], b"").await;
    assert_eq!(hit.header("x-ims-vcr"), Some("hit"), "{}", hit.text());
    assert_eq!(hit.body, recorded.body);
    let other = send("GET", &url(&replay), &[("x-name", "Renée")], b"").await;
    assert_eq!(
        other.header("x-ims-vcr"),
        Some("miss"),
        "another value is another request"
    );
    replay.shutdown().await.unwrap();

    let out = dir.path().join("out");
    export_store(&store, &out, None).unwrap();
    let replay = cassette_replayer(&out).await;
    let hit = send("GET", &url(&replay), &[("x-name", "René")], b"").await;
    assert_eq!(hit.header("x-ims-vcr"), Some("hit"), "{}", hit.text());
}

#[tokio::test]
async fn a_miss_carries_a_machine_readable_diff_against_the_nearest_recording() {
    let (_dir, store, _fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    get(&format!("{}/v2/images?limit=10&owner=x", proxy.uri())).await;
    proxy.shutdown().await.unwrap();
    let replay = replayer(&store).await;
    let miss = get(&format!("{}/v2/images?limit=20&owner=x", replay.uri())).await;
    let diff = miss.json()["ims_vcr"]["diff"].clone();
    assert_eq!(
        diff,
        serde_json::json!([{"part": "query", "name": "limit", "recorded": ["10"], "got": ["20"]}])
    );
}

#[tokio::test]
async fn the_control_api_reports_and_switches_mode_but_is_never_recorded() {
    let (_dir, store, fake, proxy) = fake_and_recorder(FakeOptions::default()).await;
    let control = |path: &str| format!("{}/__ims-vcr/{path}", proxy.uri());
    assert_eq!(get(&control("health")).await.json()["mode"], "record");
    get(&image_url(&proxy, SEED_IMAGE_ID)).await;

    let switched = send("POST", &control("mode"), &[], br#"{"mode":"replay"}"#).await;
    assert_eq!(switched.json()["mode"], "replay");
    assert_eq!(
        get(&image_url(&proxy, SEED_IMAGE_ID))
            .await
            .header("x-ims-vcr"),
        Some("hit")
    );
    assert_eq!(
        get(&image_url(&proxy, UNKNOWN_IMAGE_ID))
            .await
            .header("x-ims-vcr"),
        Some("miss")
    );
    let stats = get(&control("stats")).await.json();
    assert_eq!(
        (
            stats["hits"].as_u64(),
            stats["misses"].as_u64(),
            stats["recorded"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    // Its cursor: the recording client took the answer live, then replay served it.
    assert_eq!(stats["requests"][0]["played"], 2);
    let misses = get(&control("misses")).await.json();
    assert_eq!(
        misses[0]["request"],
        format!("GET /v2/images/{UNKNOWN_IMAGE_ID}")
    );
    assert_eq!(get(&control("nonsense")).await.status, 404);
    // A mode that does not exist is a bad request (409 is for one this proxy cannot take).
    assert_eq!(
        send("POST", &control("mode?mode=warp"), &[], b"")
            .await
            .status,
        400
    );
    // One recording's cursor, by its key or the 12 digits `ls` prints, any case; a key that
    // names nothing, or is none, says so.
    let key = stats["requests"][0]["key"].as_str().unwrap().to_owned();
    for given in [key.clone(), key[..12].to_ascii_uppercase()] {
        let reset = send("POST", &control(&format!("reset?key={given}")), &[], b"").await;
        assert_eq!(
            (reset.status, reset.json()["reset"].as_u64()),
            (200, Some(1)),
            "{given}"
        );
    }
    let other = if key.starts_with('0') { "1" } else { "0" };
    let unknown = send(
        "POST",
        &control(&format!("reset?key={other}{}", &key[1..12])),
        &[],
        b"",
    )
    .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    assert!(
        unknown.text().contains("no recording has key"),
        "{}",
        unknown.text()
    );
    for bad in ["", "abc", "not-hex-at-all"] {
        let refused = send("POST", &control(&format!("reset?key={bad}")), &[], b"").await;
        assert_eq!(refused.status, 400, "{bad:?}");
    }
    proxy.shutdown().await.unwrap();
    assert_eq!(
        fake.requests().len(),
        1,
        "control requests never reach the upstream"
    );
    assert_eq!(stored_answers(&store), 1, "nor the store");

    let replay_only = replayer(&store).await;
    let refused = send(
        "POST",
        &format!("{}/__ims-vcr/mode?mode=record", replay_only.uri()),
        &[],
        b"",
    )
    .await;
    assert_eq!(refused.status, 409);
    assert!(
        refused.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--upstream")
    );
}

#[tokio::test]
async fn seeded_fault_injection_is_reproducible_and_near_its_rate() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    record_seed_and_polling(&store).await;
    let run = |seed| {
        let store = store.clone();
        async move {
            let faults: Vec<Fault> = vec!["503:0.3".parse().unwrap()];
            let replay = ProxyServer::builder()
                .replay()
                .store(&store)
                .faults(faults, seed)
                .start()
                .await
                .unwrap();
            let mut outcomes = Vec::new();
            for _ in 0..200 {
                let reply = get(&image_url(&replay, SEED_IMAGE_ID)).await;
                outcomes.push(reply.status);
            }
            outcomes
        }
    };
    let (a, b) = (run(42).await, run(42).await);
    assert_eq!(a, b, "same seed, same faults");
    let faults = a.iter().filter(|s| **s == 503).count();
    assert!(
        (30..=90).contains(&faults),
        "{faults} faults in 200 at rate 0.3"
    );
    assert!(a.iter().all(|s| *s == 503 || *s == 200));

    let resetting = ProxyServer::builder()
        .replay()
        .store(&store)
        .faults(vec!["reset:1".parse().unwrap()], 0)
        .start()
        .await
        .unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let err = client
        .get(image_url(&resetting, SEED_IMAGE_ID))
        .send()
        .await;
    assert!(
        err.is_err(),
        "a reset fault closes the connection without an answer"
    );
}

#[tokio::test]
async fn fixed_latency_delays_every_replayed_answer() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    record_seed_and_polling(&store).await;
    let replay = ProxyServer::builder()
        .replay()
        .store(&store)
        .latency(Latency::Fixed(Duration::from_millis(80)))
        .start()
        .await
        .unwrap();
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(get(&image_url(&replay, SEED_IMAGE_ID)).await.status, 200);
        // A lower bound only: the delay is a floor, and nothing here times the machine.
        assert!(started.elapsed() >= Duration::from_millis(80));
    }
}

#[tokio::test]
async fn fail_on_miss_and_fail_on_unused_set_the_exit_code_and_print_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let cassettes = Path::new(env!("CARGO_MANIFEST_DIR")).join("cassettes");
    let cassettes = cassettes.to_str().unwrap();
    let cases: [(&[&str], bool, i32, &str); 4] = [
        (
            &["--fail-on-miss"],
            true,
            3,
            "miss (1x): GET /v2/images/nope",
        ),
        (&["--fail-on-miss"], false, 0, "0 misses"),
        (
            &["--fail-on-unused"],
            false,
            3,
            "unused: GET /v2/schemas/image",
        ),
        (&[], true, 0, "1 miss,"),
    ];
    for (flags, miss, code, expected) in cases {
        let mut args = vec!["replay", "--listen", "0", "--cassettes", cassettes];
        args.extend_from_slice(flags);
        let proxy = Running::start(&args, dir.path());
        get(&format!("{}/v2/images/{SEED_IMAGE_ID}", proxy.uri)).await;
        if miss {
            get(&format!("{}/v2/images/nope", proxy.uri)).await;
        }
        proxy.signal("-TERM");
        let (status, log) = proxy.wait_with_log();
        assert_eq!(status.code(), Some(code), "{flags:?}:\n{log}");
        assert!(
            log.contains(expected),
            "{flags:?}: expected {expected:?} in\n{log}"
        );
        assert!(log.contains("ims-vcr summary:"), "{log}");
    }
}

#[tokio::test]
async fn requests_recorded_in_an_auto_session_are_not_unused_but_older_unasked_ones_are() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::default()).await;
    let auto = |dir: &Path| {
        let flags = ["--store", "s", "--fail-on-unused"];
        Running::forwarding("auto", &fake, dir, &flags, &[])
    };
    // First session: both requests are recorded (asked for), so nothing is unused.
    let proxy = auto(dir.path());
    for id in [SEED_IMAGE_ID, UNKNOWN_IMAGE_ID] {
        let reply = get(&format!("{}/v2/images/{id}", proxy.uri)).await;
        assert_eq!(reply.header("x-ims-vcr"), Some("recorded"));
    }
    let stop = |proxy: Running| {
        proxy.signal("-TERM");
        let (status, log) = proxy.wait_with_log();
        (status.code(), log)
    };
    let (code, log) = stop(proxy);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("0 unused recordings"), "{log}");
    // Second session: one is replayed, the other never asked for.
    let proxy = auto(dir.path());
    let reply = get(&format!("{}/v2/images/{SEED_IMAGE_ID}", proxy.uri)).await;
    assert_eq!(reply.header("x-ims-vcr"), Some("hit"));
    let (code, log) = stop(proxy);
    assert_eq!(code, Some(3), "{log}");
    assert!(
        log.contains(&format!("unused: GET /v2/images/{UNKNOWN_IMAGE_ID}")),
        "{log}"
    );
}

/// The binary given one CPU (as under `taskset -c 0`, or in a one-CPU container) runs its async
/// runtime on a single thread; concurrent clients are still each answered in record, replay and
/// passthrough, and a record session still ends with everything it recorded stored and
/// replayable.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_given_one_cpu_records_replays_and_forwards_for_concurrent_clients() {
    const CLIENTS: usize = 12;
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::plain()).await;
    let paths: Vec<String> = (0..CLIENTS)
        .map(|c| match c % 3 {
            0 => format!("/v2/images/{SEED_IMAGE_ID}"),
            1 => format!("/v2/images/{}", error_image_id(404)),
            _ => format!("/v2/images/{}", error_image_id(500 + c as u16 % 4)),
        })
        .collect();
    // Every client asks its path twice, all clients at once.
    async fn ask_all(uri: &str, paths: &[String]) -> Vec<Vec<Reply>> {
        let asks = paths.iter().map(|path| {
            let url = format!("{uri}{path}");
            tokio::spawn(async move { vec![get(&url).await, get(&url).await] })
        });
        let mut replies = Vec::new();
        for ask in asks.collect::<Vec<_>>() {
            replies.push(ask.await.unwrap());
        }
        replies
    }

    let url = fake.base_url();
    let record = Running::start_on_one_cpu(
        &[
            "record",
            "--upstream",
            &url,
            "--listen",
            "0",
            "--store",
            "store",
            "-v",
        ],
        dir.path(),
    );
    let recorded = ask_all(&record.uri, &paths).await;
    assert!(
        record
            .log()
            .contains("async runtime: one thread (one CPU available)"),
        "{}",
        record.log()
    );
    for (path, replies) in paths.iter().zip(&recorded) {
        for reply in replies {
            assert_eq!(reply.header("x-ims-vcr"), Some("recorded"), "{path}");
        }
    }
    record.assert_no_panic();
    assert!(record.terminate().success());

    let replay = Running::start_on_one_cpu(&["replay", "--store", "store"], dir.path());
    let replayed = ask_all(&replay.uri, &paths).await;
    for ((path, live), again) in paths.iter().zip(&recorded).zip(&replayed) {
        for (live, again) in live.iter().zip(again) {
            assert_eq!(again.header("x-ims-vcr"), Some("hit"), "{path}");
            assert_eq!(
                (again.status, &again.body),
                (live.status, &live.body),
                "{path}"
            );
        }
    }
    replay.assert_no_panic();
    assert!(replay.terminate().success());

    let seen = fake.requests().len();
    let passthrough = Running::start_on_one_cpu(
        &["passthrough", "--upstream", &url, "--listen", "0"],
        dir.path(),
    );
    for (path, replies) in paths.iter().zip(ask_all(&passthrough.uri, &paths).await) {
        for reply in replies {
            assert_eq!(reply.header("x-ims-vcr"), Some("forwarded"), "{path}");
        }
    }
    assert_eq!(fake.requests().len(), seen + 2 * CLIENTS);
    passthrough.assert_no_panic();
}

/// A new test polling an image in `auto` sees it change while it is recorded (each identical
/// request after the answers recorded in the session is forwarded and appended), and its next
/// `auto` run replays the polls in order without reaching the upstream.
#[tokio::test]
async fn auto_records_a_polled_request_as_it_changes_and_replays_the_polls_in_order() {
    let (up, asked) = polled_upstream(|n, _| {
        let status = ["queued", "saving", "active"].get(n).unwrap_or(&"deleted");
        format!(r#"{{"id":"polled","status":"{status}"}}"#)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let status = |reply: &Reply| {
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        body["status"].as_str().unwrap().to_owned()
    };
    let mut runs = Vec::new();
    for run in 0..2 {
        let proxy = ProxyServer::builder()
            .auto(ims_vcr::UpstreamConfig::new(&up))
            .store(&store)
            .start()
            .await
            .unwrap();
        let mut seen = Vec::new();
        for _ in 0..10 {
            let reply = get(&format!("{}/v2/images/polled", proxy.uri())).await;
            let now = status(&reply);
            seen.push(format!("{now} ({})", reply.header("x-ims-vcr").unwrap()));
            if now == "active" {
                break;
            }
        }
        // Past the end of what an earlier run recorded: the last answer again, not forwarded.
        if run == 1 {
            let again = get(&format!("{}/v2/images/polled", proxy.uri())).await;
            seen.push(format!(
                "{} ({})",
                status(&again),
                again.header("x-ims-vcr").unwrap()
            ));
        }
        proxy.shutdown().await.unwrap();
        runs.push(seen);
    }
    assert_eq!(
        runs,
        [
            vec![
                "queued (recorded)",
                "saving (recorded)",
                "active (recorded)"
            ],
            vec![
                "queued (hit)",
                "saving (hit)",
                "active (hit)",
                "active (hit)"
            ],
        ]
    );
    assert_eq!(
        asked.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "the second run reached the upstream"
    );
}

/// A session switched from `record` to `auto` at run time goes on from where it is: the answers
/// recorded so far were taken by the client, so the next poll is forwarded (the image does not go
/// back in time); after a `reset` they play from the first.
#[tokio::test]
async fn a_switch_from_record_to_auto_goes_on_from_where_the_session_is() {
    let (up, asked) = polled_upstream(|n, _| {
        let status = ["queued", "saving", "active"].get(n).unwrap_or(&"active");
        format!(r#"{{"id":"polled","status":"{status}"}}"#)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let proxy =
        recording_through(ims_vcr::UpstreamConfig::new(&up), &dir.path().join("store")).await;
    let poll = || async {
        let reply = get(&format!("{}/v2/images/polled", proxy.uri())).await;
        let status = reply.json()["status"].as_str().unwrap().to_owned();
        format!("{status} ({})", reply.header("x-ims-vcr").unwrap())
    };
    assert_eq!(poll().await, "queued (recorded)");
    assert_eq!(poll().await, "saving (recorded)");
    let mode = format!("{}/__ims-vcr/mode?mode=auto", proxy.uri());
    assert_eq!(send("POST", &mode, &[], b"").await.status, 200);
    assert_eq!(poll().await, "active (recorded)");
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 3);
    let reset = format!("{}/__ims-vcr/reset", proxy.uri());
    assert_eq!(send("POST", &reset, &[], b"").await.status, 200);
    assert_eq!(poll().await, "queued (hit)");
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_auto_hit_answered_at_once_and_its_misses_forwarded_as_the_general_path_does() {
    // `auto` answers a hit at once too, and a miss (or a tape played to its end) goes on to be
    // forwarded and recorded; a fixed latency of zero sends the same requests the general way.
    // Two stores recorded alike, two upstreams alike: the answers, and the stores after, agree.
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    for (name, latency) in [
        ("at-once", None),
        ("general", Some(Latency::Fixed(Duration::ZERO))),
    ] {
        let store = dir.path().join(name);
        record_seed_and_polling(&store).await;
        let fake = FakeIms::start(FakeOptions::default()).await;
        let mut builder = ProxyServer::builder()
            .auto(upstream_for(&fake, dir.path()))
            .store(&store);
        if let Some(latency) = latency {
            builder = builder.latency(latency);
        }
        let proxy = builder.start().await.unwrap();
        let mut answers = Vec::new();
        for (method, id) in [
            ("GET", SEED_IMAGE_ID),
            ("GET", SEED_IMAGE_ID),
            ("HEAD", SEED_IMAGE_ID),
            ("GET", POLLING_IMAGE_ID),
            ("GET", POLLING_IMAGE_ID),
            ("GET", POLLING_IMAGE_ID),
            ("GET", POLLING_IMAGE_ID),
            ("GET", "00000000-0000-4000-8000-00000000a070"),
            ("GET", "00000000-0000-4000-8000-00000000a070"),
        ] {
            let reply = send(method, &image_url(&proxy, id), &[], b"").await;
            let outcome = reply.header("x-ims-vcr").map(str::to_owned);
            answers.push((method, id, reply.status, outcome, reply.text()));
        }
        let metrics = get(&format!("{}/__ims-vcr/metrics", proxy.uri()))
            .await
            .text();
        let counts: Vec<String> = metrics
            .lines()
            .filter(|l| l.starts_with("ims_vcr_requests_total") || l.starts_with("ims_vcr_misses"))
            .map(str::to_owned)
            .collect();
        proxy.shutdown().await.unwrap();
        fake.stop().await;
        seen.push((answers, counts, stored_answers(&store)));
    }
    assert!(
        seen[0].0.iter().any(|a| a.3.as_deref() == Some("hit")),
        "{:?}",
        seen[0].0
    );
    assert!(
        seen[0].0.iter().any(|a| a.3.as_deref() == Some("recorded")),
        "{:?}",
        seen[0].0
    );
    assert_eq!(seen[0], seen[1]);
}

#[tokio::test]
async fn a_passthrough_forward_begun_at_once_gives_what_the_general_path_gives() {
    // Passthrough forwards a plain request without `handle`'s future around it; a fixed latency
    // of zero sends the same requests the general way. Two upstreams alike: the answers, the
    // upstream's requests and the counts agree, and nothing is stored by either.
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    for latency in [None, Some(Latency::Fixed(Duration::ZERO))] {
        let fake = FakeIms::start(FakeOptions::default()).await;
        let mut builder = ProxyServer::builder().passthrough(upstream_for(&fake, dir.path()));
        if let Some(latency) = latency {
            builder = builder.latency(latency);
        }
        let proxy = builder.start().await.unwrap();
        let mut answers = Vec::new();
        for (method, path) in [
            ("GET", format!("/v2/images/{SEED_IMAGE_ID}")),
            ("HEAD", format!("/v2/images/{SEED_IMAGE_ID}")),
            ("GET", format!("/v2/images/{POLLING_IMAGE_ID}?b=2&a=1")),
            ("GET", format!("/v2/images/{}", error_image_id(404))),
            ("GET", "/__ims-vcr/health".to_owned()),
        ] {
            let reply = send(method, &format!("{}{path}", proxy.uri()), &[], b"").await;
            let outcome = reply.header("x-ims-vcr").map(str::to_owned);
            answers.push((method, path, reply.status, outcome, reply.text()));
        }
        let metrics = get(&format!("{}/__ims-vcr/metrics", proxy.uri()))
            .await
            .text();
        let counts: Vec<String> = metrics
            .lines()
            .filter(|l| l.starts_with("ims_vcr_requests_total"))
            .map(str::to_owned)
            .collect();
        proxy.shutdown().await.unwrap();
        let upstream: Vec<String> = fake
            .requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path_and_query))
            .collect();
        fake.stop().await;
        seen.push((answers, counts, upstream));
    }
    assert!(
        seen[0]
            .0
            .iter()
            .any(|a| a.3.as_deref() == Some("forwarded")),
        "{:?}",
        seen[0].0
    );
    assert_eq!(seen[0], seen[1]);
}

#[tokio::test]
async fn a_replayed_request_answered_at_once_gets_what_the_general_path_gives() {
    // Replay answers a request nothing can make wait in the call that receives it
    // (`proxy::at_once`); a fixed latency of zero sends the same requests through the general
    // path. Hits, a HEAD, misses, a tape `--sequence strict` exhausted and the counts kept of
    // them all agree.
    let cassettes = Path::new(env!("CARGO_MANIFEST_DIR")).join("cassettes");
    for sequence in [Sequence::RepeatLast, Sequence::Strict] {
        let start = |latency: Option<Latency>| {
            let mut builder = ProxyServer::builder()
                .replay()
                .cassettes(&cassettes)
                .sequence(sequence);
            if let Some(latency) = latency {
                builder = builder.latency(latency);
            }
            builder.start()
        };
        let at_once = start(None).await.unwrap();
        let general = start(Some(Latency::Fixed(Duration::ZERO))).await.unwrap();
        let requests = [
            ("GET", format!("/v2/images/{SEED_IMAGE_ID}")),
            ("HEAD", format!("/v2/images/{SEED_IMAGE_ID}")),
            ("GET", format!("/v2/images/{SEED_IMAGE_ID}?")),
            ("GET", "/v2/images/nope".to_owned()),
            ("GET", "/v2/images/nope?a=1&a=2".to_owned()),
            ("GET", format!("/v2/images/{SEED_IMAGE_ID}")),
            ("GET", "/__ims-vcr/misses".to_owned()),
        ];
        for (method, path) in &requests {
            let [a, b] = [&at_once, &general].map(|proxy| format!("{}{path}", proxy.uri()));
            let (a, b) = (
                send(method, &a, &[], b"").await,
                send(method, &b, &[], b"").await,
            );
            let comparable = |reply: &Reply| {
                let headers: Vec<(String, String)> = reply
                    .headers
                    .iter()
                    .filter(|(n, _)| n != "date")
                    .cloned()
                    .collect();
                (reply.status, headers, reply.text())
            };
            assert_eq!(
                comparable(&a),
                comparable(&b),
                "{sequence:?}: {method} {path}"
            );
        }
        let [a, b] = [at_once, general].map(|proxy| async move {
            let metrics = get(&format!("{}/__ims-vcr/metrics", proxy.uri()))
                .await
                .text();
            proxy.shutdown().await.unwrap();
            // Latency histograms differ by the clock; the counts of requests by outcome do not.
            metrics
                .lines()
                .filter(|l| {
                    l.starts_with("ims_vcr_requests_total") || l.starts_with("ims_vcr_misses")
                })
                .map(str::to_owned)
                .collect::<Vec<_>>()
        });
        let (a, b) = (a.await, b.await);
        assert!(!a.is_empty(), "no request counts in the metrics");
        assert_eq!(a, b, "{sequence:?}");
    }
}
