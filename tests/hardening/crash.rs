//! Crash safety: every answer a client received survives `kill -9` of the recorder at random
//! moments under load, and the store reopens whole.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::util::*;

/// Requests sent again and again by every client (the rest are unique per request).
const REPEATED: [&str; 5] = [
    SEED_IMAGE_ID,
    UNKNOWN_IMAGE_ID,
    POLLING_IMAGE_ID,
    "00000000-0000-4000-8000-000000000500",
    "shared-image-for-the-crash-test",
];

/// One client of the crash test: sends until `stop`, and notes every request whose whole answer
/// arrived marked `recorded`.
async fn crash_client(
    uri: String,
    iteration: usize,
    client: usize,
    answered: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut n = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let id = if n.is_multiple_of(3) {
            format!("unique-{iteration}-{client}-{n}")
        } else {
            REPEATED[(client + n) % REPEATED.len()].to_owned()
        };
        n += 1;
        let path = format!("/v2/images/{id}");
        let Ok(response) = http.get(format!("{uri}{path}")).send().await else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let recorded = response
            .headers()
            .get("x-ims-vcr")
            .is_some_and(|v| v == "recorded");
        if response.bytes().await.is_ok() && recorded {
            answered.lock().unwrap().push(path);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answered_request_survives_kill_9_at_random_moments_under_load_and_the_store_reopens_whole()
 {
    const ITERATIONS: usize = 8;
    const CLIENTS: usize = 16;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fake = FakeIms::start(FakeOptions::plain()).await;
    let mut rng = Rng(0x1ce_c0ffee);
    // Path → answers the store must hold at least. A new session replaces a request's answers
    // with its own (possibly unanswered) first one, so older requests only promise one.
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    let mut total_answered = 0;
    for iteration in 0..ITERATIONS {
        let mut proxy = Running::start_with_env(
            &[
                "record",
                "--upstream",
                &fake.base_url(),
                "--listen",
                "0",
                "--store",
                "store",
            ],
            dir.path(),
            &[],
        );
        let answered = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let task = crash_client(
                    proxy.uri.clone(),
                    iteration,
                    c,
                    answered.clone(),
                    stop.clone(),
                );
                tokio::spawn(task)
            })
            .collect();
        let delay = Duration::from_millis(rng.below(900));
        tokio::time::sleep(delay).await;
        proxy.kill_9();
        stop.store(true, Ordering::SeqCst);
        for client in clients {
            client.await.unwrap();
        }
        proxy.assert_no_panic();

        let answered = std::mem::take(&mut *answered.lock().unwrap());
        total_answered += answered.len();
        for minimum in expected.values_mut() {
            *minimum = 1;
        }
        let mut this_session: BTreeMap<String, usize> = BTreeMap::new();
        for path in answered {
            *this_session.entry(path).or_default() += 1;
        }
        expected.extend(this_session);

        let store_dir = store.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let store = ims_vcr::storage::store::Store::open(&store_dir)?;
            let rules = store.rules()?;
            store.load(&rules)
        })
        .await
        .unwrap()
        .unwrap_or_else(|e| {
            panic!("iteration {iteration} (killed after {delay:?}): the store does not load: {e}")
        });
        let held: BTreeMap<String, usize> = loaded
            .iter()
            .map(|r| (r.answers[0].request.path.clone(), r.answers.len()))
            .collect();
        for (path, minimum) in &expected {
            let got = held.get(path).copied().unwrap_or(0);
            assert!(
                got >= *minimum,
                "iteration {iteration} (killed after {delay:?}): {path} was answered {minimum} \
                 time(s) but the store holds {got} answer(s)"
            );
        }
        for recording in &loaded {
            for answer in &recording.answers {
                assert!(
                    matches!(answer.response.status, 200 | 404 | 500),
                    "{answer:?}"
                );
            }
        }
    }
    assert!(
        total_answered > 100,
        "the load was too light to prove anything: {total_answered} answers"
    );
}

/// Under a file-size limit (`ulimit -f`, systemd's `LimitFSIZE=`) a recorder is not killed by
/// SIGXFSZ when its files reach it: the writes fail as on a full disk, the answers are still
/// served (`NOT recorded` in the log), the session ends with its summary and exit status 3,
/// and every answer marked `recorded` replays.
#[cfg(unix)]
#[tokio::test]
async fn a_file_size_limit_is_a_full_disk_not_a_crash() {
    use std::os::unix::process::ExitStatusExt as _;
    let pad = "x".repeat(20_000);
    let up = json_upstream(format!(r#"{{"id":"big","pad":"{pad}"}}"#)).await;
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "record",
        "--upstream",
        &up,
        "--listen",
        "0",
        "--store",
        "store",
    ];
    let proxy = Running::start_with_file_size_limit(&args, dir.path(), 1_500_000);
    let mut recorded = Vec::new();
    for i in 0..120 {
        let path = format!("/v2/images/big-{i}");
        let reply = send("GET", &format!("{}{path}", proxy.uri), &[], b"").await;
        assert_eq!(reply.status, 200, "{path}: the client gets the live answer");
        if reply.header("x-ims-vcr") == Some("recorded") {
            recorded.push(path);
        }
    }
    assert!(
        !recorded.is_empty() && recorded.len() < 120,
        "{} recorded",
        recorded.len()
    );
    let log = proxy.log();
    let status = proxy.terminate();
    assert_eq!(status.signal(), None, "killed by a signal: {log}");
    assert_eq!(status.code(), Some(3), "{log}");
    let replay = replayer(&dir.path().join("store")).await;
    for path in &recorded {
        let reply = send("GET", &format!("{}{path}", replay.uri()), &[], b"").await;
        assert_eq!(reply.status, 200, "{path} was answered `recorded`");
    }
    replay.shutdown().await.unwrap();
}
