//! Store ownership and damage: a store another process holds, truncated, garbled or missing
//! store files, an entry that does not decode, and damaged cassettes are refused by name, and
//! nothing else changes.

use std::path::Path;

use ims_vcr::{ProxyServer, UpstreamConfig};

use crate::util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subcommand_on_a_store_another_process_holds_gets_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeIms::start(FakeOptions::plain()).await;
    let upstream = fake.base_url();
    let holder = hostile_record(dir.path(), &upstream, &[]);
    shipped_cassettes(dir.path());
    let cases: [&[&str]; 5] = [
        &[
            "record",
            "--upstream",
            &upstream,
            "--listen",
            "0",
            "--store",
            "store",
        ],
        &[
            "auto",
            "--upstream",
            &upstream,
            "--listen",
            "0",
            "--store",
            "store",
        ],
        &["replay", "--store", "store", "--listen", "0"],
        &["export", "--store", "store", "--out", "out"],
        &["import", "--store", "store", "cassettes"],
    ];
    for args in cases {
        let (code, stderr) = run(args, dir.path());
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains("store store is in use by another process")
                && stderr.contains("stop that process first"),
            "{args:?}: {stderr}"
        );
        // The holder is named: its pid and subcommand (never its flags, which can hold secrets).
        assert!(
            stderr.contains(&format!("(pid {}: ims-vcr record)", holder.pid())),
            "{args:?}: {stderr}"
        );
    }
    assert!(!dir.path().join("out").exists(), "export wrote nothing");
    let reply = get(&format!("{}/v2/images/{SEED_IMAGE_ID}", holder.uri)).await;
    assert_eq!(reply.header("x-ims-vcr"), Some("recorded"));
    holder.assert_no_panic();
}

/// Records 20 answers in-process into `store`.
async fn record_twenty(store: &Path) {
    let fake = FakeIms::start(FakeOptions::plain()).await;
    let proxy = ProxyServer::builder()
        .record(UpstreamConfig::new(fake.base_url()))
        .store(store)
        .start()
        .await
        .unwrap();
    for n in 0..20 {
        get(&image_url(&proxy, &format!("image-{n}"))).await;
    }
    proxy.shutdown().await.unwrap();
    fake.stop().await;
}

/// The store's sled database, opened around ims-vcr. sled lets go of its lock file a moment
/// after the last handle is dropped (its flusher thread holds one), so a store a proxy has just
/// closed may still be locked for a while on a busy machine: wait for it (bounded).
/// The store's log file (`ims-vcr-log`).
const LOG: &str = ims_vcr::storage::log_file::LOG_FILE;

/// Every entry recording put in the store's log (its file, store format 3: groups of journal
/// records), in key order.
fn log_entries(store: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    use ims_vcr::storage::journal::{Found, scan};
    let mut entries = std::collections::BTreeMap::new();
    let log = ims_vcr::storage::log_file::LogFile::open(store).unwrap();
    for (_, bytes) in log.groups().unwrap() {
        for found in scan(&bytes) {
            let Found::Record {
                removes,
                key,
                value,
                ..
            } = found
            else {
                panic!("a whole record: {found:?}");
            };
            for old in removes {
                entries.remove(old.as_slice());
            }
            entries.insert(key.to_vec(), bytes[value].to_vec());
        }
    }
    entries.into_iter().collect()
}

/// Gives the log's entry `key` the value `value`, checksummed anew, around ims-vcr (the log
/// written again, group by group, with sled's count of its bytes: the store closed).
fn overwrite_log_entry(store: &Path, key: &[u8], value: &[u8]) {
    use ims_vcr::storage::journal::{Found, encode, scan};
    let log = ims_vcr::storage::log_file::LogFile::open(store).unwrap();
    let mut groups = Vec::new();
    for (_, bytes) in log.groups().unwrap() {
        let (mut rebuilt, mut start) = (Vec::new(), 0);
        for found in scan(&bytes) {
            let Found::Record {
                generation,
                removes,
                key: k,
                value: at,
            } = found
            else {
                panic!("a whole record: {found:?}");
            };
            if k[..] == *key {
                rebuilt.extend(encode(generation, &removes, &k, value).unwrap().0);
            } else {
                rebuilt.extend_from_slice(&bytes[start..at.end]);
            }
            start = at.end;
        }
        groups.push(rebuilt);
    }
    log.clear().unwrap();
    let end = groups.iter().fold(0, |at, g| log.append(at, g).unwrap());
    let db = open_sled(store);
    db.open_tree("meta")
        .unwrap()
        .insert("log_end", &end.to_be_bytes())
        .unwrap();
    db.flush().unwrap();
}

fn open_sled(store: &Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match sled::open(store) {
            Ok(db) => return db,
            Err(e) if std::time::Instant::now() < deadline && e.to_string().contains("lock") => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("{}: {e}", store.display()),
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for (name, bytes) in all_files(from) {
        let path = to.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

fn garble(path: &Path, at: usize, len: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let end = (at + len).min(bytes.len());
    for (i, b) in bytes[at..end].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37) ^ 0xa5;
    }
    std::fs::write(path, bytes).unwrap();
}

/// Asserts that `replay` and `export --out OUT` of the store `store` in `dir` exit with 1 and
/// an error that `says`.
fn replay_and_export_refuse(dir: &Path, out: &str, says: impl Fn(&str) -> bool) {
    for args in [
        &["replay", "--store", "store", "--listen", "0"][..],
        &["export", "--store", "store", "--out", out],
    ] {
        let (code, stderr) = run(args, dir);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(says(&stderr), "{args:?}: {stderr}");
    }
}

/// Where the intact log file holds recordings: the first bytes of the eleventh one written,
/// and of the eighth.
struct Places {
    eleventh: usize,
    eighth: usize,
}

/// Damages the store in a folder.
type Damage = fn(&Path, &Places);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_with_truncated_garbled_or_missing_files_is_refused_by_name_and_nothing_else_changes()
 {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    record_twenty(&good).await;
    let log = std::fs::read(good.join(LOG)).unwrap();
    let first = |needle: &str| {
        let at = log
            .windows(needle.len())
            .position(|w| w == needle.as_bytes());
        at.unwrap_or_else(|| panic!("{needle} is not in the store's log"))
    };
    let places = Places {
        eleventh: first("image-10"),
        eighth: first("image-7"),
    };
    assert!(places.eighth < places.eleventh, "written in order");
    // Each refused by every command as it opens the store, but the garbled log: its damage is
    // found where it is read (an export, a pack rebuild; replay serves the intact pack meanwhile).
    let damages: [(&str, Damage, bool); 8] = [
        (
            "db truncated to nothing",
            |s, _| std::fs::File::create(s.join("db")).map(drop).unwrap(),
            true,
        ),
        (
            "db deleted",
            |s, _| std::fs::remove_file(s.join("db")).unwrap(),
            true,
        ),
        ("conf garbled", |s, _| garble(&s.join("conf"), 4, 16), true),
        (
            "log truncated to nothing",
            |s, _| std::fs::File::create(s.join(LOG)).map(drop).unwrap(),
            true,
        ),
        (
            "log cut before the eleventh recording",
            |s, at| {
                let file = std::fs::OpenOptions::new().write(true).open(s.join(LOG));
                file.unwrap().set_len(at.eleventh as u64).unwrap();
            },
            true,
        ),
        (
            "log deleted",
            |s, _| std::fs::remove_file(s.join(LOG)).unwrap(),
            true,
        ),
        (
            "log garbled on the eighth recording",
            |s, at| garble(&s.join(LOG), at.eighth, 512),
            false,
        ),
        (
            "log garbled from its start",
            |s, _| garble(&s.join(LOG), 0, 64),
            false,
        ),
    ];
    let out = dir.path().join("out");
    shipped_cassettes(dir.path());
    copy_dir(&dir.path().join("cassettes"), &out);
    std::fs::write(out.join("notes.txt"), "not a cassette").unwrap();
    let out_before = all_files(&out);
    for (damage, apply, at_open) in damages {
        let store = dir.path().join("store");
        let _ = std::fs::remove_dir_all(&store);
        copy_dir(&good, &store);
        apply(&store, &places);
        if !at_open {
            let (code, stderr) = run(&["export", "--store", "store", "--out", "out"], dir.path());
            assert_eq!(code, 1, "{damage}: {stderr}");
            assert!(
                stderr.contains("error: store store")
                    && stderr.contains("log")
                    && stderr.contains("corrupt"),
                "{damage}: {stderr}"
            );
            assert_eq!(
                all_files(&out),
                out_before,
                "{damage}: export changed --out"
            );
            continue;
        }
        for args in [
            &["replay", "--store", "store", "--listen", "0"][..],
            &["export", "--store", "store", "--out", "out"],
            &[
                "record",
                "--upstream",
                "http://127.0.0.1:9",
                "--listen",
                "0",
                "--store",
                "store",
            ],
        ] {
            let (code, stderr) = run(args, dir.path());
            assert_eq!(code, 1, "{damage}: {args:?}: {stderr}");
            assert!(
                stderr.contains("error: store store") && stderr.contains("damaged"),
                "{damage}: {args:?}: {stderr}"
            );
        }
        assert_eq!(
            all_files(&out),
            out_before,
            "{damage}: export changed --out"
        );
    }
    // The undamaged original still opens whole.
    let (code, stderr) = run(&["export", "--store", "good", "--out", "fresh"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("exported 20 requests"), "{stderr}");
}

/// sled reads back, as it opens, only its log past its latest snapshot (written when it opens a
/// log that moved past the last one, which ims-vcr has it do at the close of a session that
/// wrote), so damage to an older part of a large store's `db` is
/// found when the damaged entry is read: by export and by a pack rebuild, while replay serves its
/// intact pack (whose answers carry their own checksums). Here the store spans several of sled's
/// 512 KiB segments and was opened again since its last write, and every copy of one recording
/// in an older segment is garbled (sled rewrites a page as it grows; which copy is live, and
/// where, depends on the timing of its writes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_to_an_older_part_of_a_large_store_is_refused_by_what_reads_it_and_the_pack_still_serves()
 {
    let dir = tempfile::tempdir().unwrap();
    let cassettes = dir.path().join("many");
    std::fs::create_dir(&cassettes).unwrap();
    let shipped = shipped_cassettes(dir.path());
    let id = "bc6bed6e-ba3a-4447-afcc-449174a3eb52";
    let seed = std::fs::read_dir(&shipped).unwrap().find_map(|e| {
        let path = e.unwrap().path();
        path.to_string_lossy().contains(id).then_some(path)
    });
    let text = std::fs::read_to_string(seed.unwrap()).unwrap();
    for n in 0..600 {
        let file = cassettes.join(format!("image_{n:04}.json"));
        std::fs::write(
            file,
            text.replace(id, &format!("bc6bed6e-ba3a-4447-afcc-{n:012}")),
        )
        .unwrap();
    }
    let ok = |args: &[&str]| {
        let (code, stderr) = run(args, dir.path());
        assert_eq!(code, 0, "{args:?}: {stderr}");
        stderr
    };
    ok(&["import", "--store", "good", "many"]);
    // Opened again since its last write (its snapshot is the import's close's, or that open's).
    ok(&["export", "--store", "good", "--out", "whole"]);
    let db = std::fs::read(dir.path().join("good/db")).unwrap();
    // sled's log: 512 KiB segments, each headed by its log position (bytes 4..12, little-endian,
    // XORed with i64::MAX); the latest snapshot's name gives the position it reaches, and sled
    // reads back at open the segment holding that position and those after it.
    const SEGMENT: usize = 512 * 1024;
    let reach = std::fs::read_dir(dir.path().join("good"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let hex = name.strip_prefix("snap.").filter(|h| !h.contains('.'))?;
            u64::from_str_radix(hex, 16).ok()
        })
        .max()
        .expect("a snapshot");
    let read_at_open = reach / SEGMENT as u64 * SEGMENT as u64;
    let older = |offset: usize| {
        let head = offset / SEGMENT * SEGMENT;
        let lsn = u64::from_le_bytes(db[head + 4..head + 12].try_into().unwrap());
        lsn ^ 0x7FFF_FFFF_FFFF_FFFF < read_at_open
    };
    // Every copy of each recording in `db`; one whose copies all lie in segments sled does not
    // read back at open (the one whose last copy is earliest).
    let mut copies = vec![Vec::new(); 600];
    for i in 0..db.len() - 24 {
        if let Some(n) = db[i..]
            .strip_prefix(b"afcc-")
            .and_then(|rest| std::str::from_utf8(&rest[..12]).ok()?.parse::<usize>().ok())
        {
            copies[n].push(i);
        }
    }
    let (n, at) = copies
        .iter()
        .enumerate()
        .filter(|(_, at)| !at.is_empty() && at.iter().all(|&i| older(i)))
        .min_by_key(|(_, at)| at.last())
        .unwrap_or_else(|| panic!("no recording lies wholly before log position {read_at_open}"));
    let store = dir.path().join("store");
    copy_dir(&dir.path().join("good"), &store);
    for &at in at {
        garble(&store.join("db"), at, 17);
    }
    let (code, stderr) = run(&["export", "--store", "store", "--out", "out"], dir.path());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("error: store store is damaged"), "{stderr}");
    assert!(!dir.path().join("out").exists(), "export wrote its --out");
    let replay = Running::start(
        &["replay", "--store", "store", "--listen", "127.0.0.1:0"],
        dir.path(),
    );
    let id = format!("bc6bed6e-ba3a-4447-afcc-{n:012}");
    let reply = get(&format!("{}/v2/images/{id}", replay.uri)).await;
    assert_eq!(reply.status, 200);
    assert!(String::from_utf8_lossy(&reply.body).contains(&id));
    replay.terminate();
    std::fs::remove_file(store.join(ims_vcr::storage::snapshot::PACK_FILE)).unwrap();
    let (code, stderr) = run(
        &["replay", "--store", "store", "--listen", "127.0.0.1:0"],
        dir.path(),
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("error: store store is damaged"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_entry_that_does_not_decode_is_named_and_export_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    record_twenty(&store).await;
    let entry = {
        drop(open_sled(&store));
        let (key, _) = log_entries(&store).remove(0);
        overwrite_log_entry(&store, &key, b"{\"request\": {\"meth");
        key.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    // That write went around ims-vcr, so the replay pack the session left still describes the
    // store's last write (and would be served); without it, replay reads the entries and must
    // name the bad one.
    std::fs::remove_file(store.join(ims_vcr::storage::snapshot::PACK_FILE)).unwrap();
    let out = shipped_cassettes(dir.path());
    let before = all_files(&out);
    replay_and_export_refuse(dir.path(), "cassettes", |stderr| {
        stderr.contains(&format!("store store: entry {entry} is corrupt"))
    });
    assert_eq!(all_files(&out), before);

    // One damaged entry never hides the rest: ls and show read the other 19 and name it.
    let (code, stdout, stderr) = run_with_stdout(&["ls", "--store", "store"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.matches("/v2/images/image-").count(), 19, "{stdout}");
    assert!(
        stderr.contains(&format!("entry {entry} is corrupt")),
        "{stderr}"
    );
    let (code, stdout, stderr) = run_with_stdout(
        &["show", "--store", "store", "/v2/images/image-7"],
        dir.path(),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("/v2/images/image-7"), "{stdout}");
    // `--skip-damaged` exports the rest and keeps what --out held.
    let (code, stderr) = run(
        &[
            "export",
            "--store",
            "store",
            "--out",
            "cassettes",
            "--skip-damaged",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("exported 19 requests") && stderr.contains(&entry),
        "{stderr}"
    );
    let after = all_files(&out);
    assert_eq!(after.len(), before.len() + 19);
    assert!(before.keys().all(|name| after.contains_key(name)));
}

/// `export` of `store` to `out`, leaving damaged entries out.
const EXPORT_SKIPPING_DAMAGED: [&str; 6] = [
    "export",
    "--store",
    "store",
    "--out",
    "out",
    "--skip-damaged",
];

#[tokio::test]
async fn a_store_key_of_the_wrong_shape_is_named_and_never_hides_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    record_twenty(&store).await;
    {
        let db = open_sled(&store);
        let answers = db.open_tree("answers").unwrap();
        answers.insert(b"stray", &b"{}"[..]).unwrap();
        db.flush().unwrap();
    }
    std::fs::remove_file(store.join(ims_vcr::storage::snapshot::PACK_FILE)).unwrap();
    let named = "entry 7374726179 is corrupt: key has 5 bytes, expected 36";
    let (code, stdout, stderr) = run_with_stdout(&["ls", "--store", "store"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.matches("/v2/images/image-").count(), 20, "{stdout}");
    assert!(stderr.contains(named), "{stderr}");
    let (code, stderr) = run(&["export", "--store", "store", "--out", "out"], dir.path());
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(named) && stderr.contains("nothing was exported"),
        "{stderr}"
    );
    assert!(!dir.path().join("out").exists());
    let (code, stderr) = run(&EXPORT_SKIPPING_DAMAGED, dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("exported 20 requests") && stderr.contains(named),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_store_entry_nested_past_the_reader_limit_is_listed_shown_exported_and_replayed() {
    // An ims-vcr before the depth limit embedded a deep answer as JSON; serde_json's reader
    // stops at 128 levels, which took ls, show, export and drift down for the whole store.
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    record_twenty(&store).await;
    let deep = format!("{}1{}", "[".repeat(125), "]".repeat(125));
    {
        drop(open_sled(&store));
        let (key, value) = log_entries(&store).remove(0);
        let mut entry: serde_json::Value = serde_json::from_slice(&value).unwrap();
        entry["response"]["body"] = serde_json::json!({"json": "DEEP"});
        let text = entry
            .to_string()
            .replace(r#"{"json":"DEEP"}"#, &format!(r#"{{"json":{deep}}}"#));
        assert!(
            serde_json::from_str::<serde_json::Value>(&text).is_err(),
            "past the limit"
        );
        overwrite_log_entry(&store, &key, text.as_bytes());
    }
    std::fs::remove_file(store.join(ims_vcr::storage::snapshot::PACK_FILE)).unwrap();
    let (code, stdout, stderr) = run_with_stdout(&["ls", "--store", "store"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.matches("/v2/images/image-").count(), 20, "{stdout}");
    assert!(!stderr.contains("corrupt"), "{stderr}");
    let (code, stderr) = run(&["export", "--store", "store", "--out", "out"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    let exported = all_files(&dir.path().join("out"));
    assert_eq!(exported.len(), 20);
    assert!(
        exported
            .values()
            .any(|bytes| String::from_utf8_lossy(bytes).contains(&format!("\"text\": \"{deep}\""))),
        "the deep body is exported as the text it stands for"
    );
    let (code, stderr) = run(&["import", "--store", "again", "out"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    // Replay from the old store itself (its pack is rebuilt from the entries) serves the bytes.
    let proxy = ProxyServer::builder()
        .replay()
        .store(&store)
        .start()
        .await
        .unwrap();
    let mut served = 0;
    for n in 0..20 {
        let reply = get(&image_url(&proxy, &format!("image-{n}"))).await;
        assert_eq!(reply.header("x-ims-vcr"), Some("hit"), "{}", reply.text());
        served += usize::from(reply.body == deep.as_bytes());
    }
    assert_eq!(served, 1, "the deep answer is served byte for byte");
    proxy.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_garbled_or_empty_cassette_is_named_and_neither_folder_nor_store_changes() {
    let dir = tempfile::tempdir().unwrap();
    let cassettes = shipped_cassettes(dir.path());
    let (code, stderr) = run(&["import", "--store", "store", "cassettes"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    let store_before = all_files(&dir.path().join("store"));
    let victim = "get_v2_schemas_image_6846de132b94.json";
    let original = std::fs::read(cassettes.join(victim)).unwrap();
    let damages: [(&str, Vec<u8>); 3] = [
        ("truncated", original[..original.len() / 2].to_vec()),
        ("garbled", {
            let mut bytes = original.clone();
            bytes[40..60].copy_from_slice(&[0xff; 20]);
            bytes
        }),
        ("empty", Vec::new()),
    ];
    for (damage, bytes) in damages {
        std::fs::write(cassettes.join(victim), &bytes).unwrap();
        let folder_before = all_files(&cassettes);
        for args in [
            &["replay", "--cassettes", "cassettes", "--listen", "0"][..],
            &["import", "--store", "store", "cassettes"],
        ] {
            let (code, stderr) = run(args, dir.path());
            assert_eq!(code, 1, "{damage}: {args:?}: {stderr}");
            assert!(
                stderr.contains(&format!("error: cassette cassettes/{victim}")),
                "{damage}: {args:?}: {stderr}"
            );
        }
        assert_eq!(all_files(&cassettes), folder_before, "{damage}");
        assert_eq!(
            all_files(&dir.path().join("store")),
            store_before,
            "{damage}: the store changed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_with_one_damaged_answer_is_left_out_whole_and_its_cassette_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fake = FakeIms::start(FakeOptions::plain()).await;
    let proxy = ProxyServer::builder()
        .record(UpstreamConfig::new(fake.base_url()))
        .store(&store)
        .start()
        .await
        .unwrap();
    get(&image_url(&proxy, SEED_IMAGE_ID)).await;
    for _ in 0..3 {
        get(&image_url(&proxy, POLLING_IMAGE_ID)).await;
    }
    proxy.shutdown().await.unwrap();
    fake.stop().await;
    let (code, stderr) = run(&["export", "--store", "store", "--out", "out"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    let before = all_files(&dir.path().join("out"));
    // The middle answer of the three the polling request has.
    let entry = {
        drop(open_sled(&store));
        let keys: Vec<Vec<u8>> = log_entries(&store).into_iter().map(|(k, _)| k).collect();
        let middle = keys
            .iter()
            .find(|k| {
                k[32..] == 1u32.to_be_bytes()
                    && keys
                        .iter()
                        .any(|o| o[..32] == k[..32] && o[32..] == 2u32.to_be_bytes())
            })
            .unwrap()
            .clone();
        overwrite_log_entry(&store, &middle, b"{\"request\": {\"meth");
        middle
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    std::fs::remove_file(store.join(ims_vcr::storage::snapshot::PACK_FILE)).unwrap();
    let (code, stdout, stderr) = run_with_stdout(&["ls", "--store", "store"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(SEED_IMAGE_ID) && !stdout.contains(POLLING_IMAGE_ID),
        "{stdout}"
    );
    assert!(stderr.contains(&entry), "{stderr}");
    let (code, stderr) = run(&EXPORT_SKIPPING_DAMAGED, dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("exported 1 request") && stderr.contains(&entry),
        "{stderr}"
    );
    assert_eq!(
        all_files(&dir.path().join("out")),
        before,
        "the polling request's cassette, with its three answers, is kept as it was"
    );
    let (code, stderr) = run(
        &[
            "export",
            "--store",
            "store",
            "--out",
            "x.har",
            "--format",
            "har",
            "--skip-damaged",
        ],
        dir.path(),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(!dir.path().join("x.har").exists());
}
