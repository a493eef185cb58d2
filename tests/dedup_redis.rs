//! The Redis dedup store against the real Redis (REDIS_URL, default redis://127.0.0.1:6379), under a
//! random key prefix that is deleted at the end.

use std::time::Duration;

use futures_util::FutureExt;
use paperboy::dedup::{fingerprint, hamming, RedisStore, Seen, Verdict};
use paperboy::redis_conn::RedisConn;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn connect() -> RedisConn {
    let client = redis::Client::open(redis_url()).expect("REDIS_URL");
    ConnectionManager::new(client)
        .await
        .expect("Redis must run for this test (REDIS_URL, default redis://127.0.0.1:6379)")
        .into()
}

fn random_prefix() -> String {
    format!("paperboy-test-{}:", uuid::Uuid::new_v4().simple())
}

/// Delete every key under `prefix`.
async fn cleanup(conn: &mut RedisConn, prefix: &str) -> usize {
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .expect("SCAN");
        keys.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    if !keys.is_empty() {
        let _: () = conn.del(&keys).await.expect("DEL");
    }
    keys.len()
}

const BODY: &str = "The city council voted on Tuesday to approve a long-awaited plan for the riverside district, \
ending a debate that has lasted almost three years and divided residents across the town.

Under the plan, the old warehouses along the river will be turned into about 1,200 homes, with a third of the \
new flats reserved for families on low incomes and the rest sold at market prices over the next decade.

Supporters said the project would bring life back to an area that has been largely empty since the last \
factories closed in the 1990s, and that the new residents would help the shops and cafes of the old town.

Opponents warned that traffic on the narrow bridge would double and that the flood defences, built after the \
great flood of 1953, were never designed to protect so many people living so close to the water.

The mayor said construction could start next spring if the regional government signs off on the funding, \
which is expected to cover roughly half of the estimated cost of two hundred million euros.

An independent engineering report commissioned last year found that the defences could be raised by half a \
metre at a cost of about twelve million euros, a sum the council has now set aside in its budget.

Residents will be able to comment on the detailed designs at a series of public meetings in the town hall \
during the coming months, and the council promised to publish every response it receives online.

Local businesses welcomed the vote. The chair of the traders' association said the plan was the best news \
for the old town in a generation and that members were ready to work with the builders.

The council will meet again in March to choose a developer from the four companies that have applied, and \
a final decision on the bridge is expected before the summer holidays.";

fn syndicated_on_site_a() -> String {
    format!(
        "Council approves riverside housing plan after three-year fight\n\
         By Anna Berg, City Reporter\n\
         Share on Facebook | Share on X | Email\n\n{BODY}\n\n\
         Read more: Mayor defends budget\n\
         © 2024 Riverside Gazette. All rights reserved."
    )
}

fn syndicated_on_site_b() -> String {
    format!(
        "Riverside warehouses to become 1,200 homes\n\
         Advertisement\n\n{BODY}\n\n\
         This article was first published by the Riverside Gazette and is republished with permission.\n\
         Follow us for more local news"
    )
}

const UNRELATED: &str = "Scientists have found a new species of frog in the mountains of the north, a small green \
animal with bright orange feet that sings only at night during the rainy season and hides under moss the rest of \
the year.

The team spent four months in the forest recording calls and collecting samples before they could be sure that \
the frog had never been described by any other researchers working in the region.

They named it after the village whose children first told them about the strange singing, and they hope the \
discovery will help protect the forest, which is threatened by logging and new roads.";

#[tokio::test]
async fn two_workers_share_hashes_and_find_syndicated_copies() {
    let prefix = random_prefix();
    let mut admin = connect().await;
    let worker_a = RedisStore::new(connect().await, &prefix, Duration::from_secs(600), 3);
    let worker_b = RedisStore::new(connect().await, &prefix, Duration::from_secs(600), 3);

    let result = async {
        // Exact: a hash recorded by worker A is a duplicate for worker B.
        let site_a = fingerprint(&syndicated_on_site_a());
        assert_eq!(
            worker_a.check_and_record(&site_a, "job-a").await.unwrap(),
            Verdict::New
        );
        assert_eq!(
            worker_b.check_and_record(&site_a, "job-a2").await.unwrap(),
            Verdict::Duplicate {
                first_job: RedisStore::job_ref("job-a")
            }
        );
        // A redelivered job is not its own duplicate, on any worker.
        assert_eq!(
            worker_b.check_and_record(&site_a, "job-a").await.unwrap(),
            Verdict::New
        );
        assert_eq!(
            worker_a.check_and_record(&site_a, "job-a").await.unwrap(),
            Verdict::New
        );

        // The key is where the docs say, with the TTL of its slice (ttl + ttl/8 at most).
        let keys = worker_a.keys(&site_a);
        let bucket = &site_a.hash["blake3:".len().."blake3:".len() + 4];
        assert!(
            keys.exact[0].starts_with(&format!("{prefix}dedup:{{x{bucket}}}:")),
            "{keys:?}"
        );
        let ttl: i64 = admin.pttl(&keys.exact[0]).await.unwrap();
        assert!(ttl > 0 && ttl <= 675_000, "pttl {ttl}");
        let stored: Vec<Vec<u8>> = admin.hvals(&keys.exact[0]).await.unwrap();
        assert_eq!(stored.len(), 1, "one 6-byte job hash");
        assert_eq!(stored[0].len(), 6);

        // Near: the same story on another site, other headline and boilerplate.
        let site_b = fingerprint(&syndicated_on_site_b());
        assert_ne!(site_a.hash, site_b.hash);
        let d = hamming(site_a.simhash, site_b.simhash);
        let v = worker_b.check_and_record(&site_b, "job-b").await.unwrap();
        assert_eq!(
            v,
            Verdict::NearDuplicate {
                of_hash: RedisStore::short_hash(&site_a.hash),
                distance: d
            },
            "SimHash distance {d}"
        );
        // The near-duplicate's exact hash is recorded too; its redelivery repeats the verdict.
        assert_eq!(
            worker_a.check_and_record(&site_b, "job-b2").await.unwrap(),
            Verdict::Duplicate {
                first_job: RedisStore::job_ref("job-b")
            }
        );
        assert_eq!(
            worker_a.check_and_record(&site_b, "job-b").await.unwrap(),
            v
        );

        // Unrelated story: new.
        let other = fingerprint(UNRELATED);
        assert!(hamming(other.simhash, site_a.simhash) > 10);
        assert_eq!(
            worker_a.check_and_record(&other, "job-c").await.unwrap(),
            Verdict::New
        );

        // Exact only (near_distance 0): the syndicated copy is new.
        let exact_only = RedisStore::new(
            connect().await,
            &format!("{prefix}x:"),
            Duration::from_secs(600),
            0,
        );
        assert_eq!(
            exact_only.check_and_record(&site_a, "j1").await.unwrap(),
            Verdict::New
        );
        assert_eq!(
            exact_only.check_and_record(&site_b, "j2").await.unwrap(),
            Verdict::New
        );
    };
    // Clean up even when an assertion fails.
    let outcome = std::panic::AssertUnwindSafe(result).catch_unwind().await;
    let deleted = cleanup(&mut admin, &prefix).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    assert!(deleted > 0);
}

#[tokio::test]
async fn concurrent_records_of_one_hash_elect_one_first_job() {
    let prefix = random_prefix();
    let mut admin = connect().await;
    let fp = fingerprint(UNRELATED);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = RedisStore::new(connect().await, &prefix, Duration::from_secs(60), 3);
        let fp = fp.clone();
        tasks.push(tokio::spawn(async move {
            store
                .check_and_record(&fp, &format!("job-{i}"))
                .await
                .unwrap()
        }));
    }
    let mut news = 0;
    let mut firsts = std::collections::HashSet::new();
    for t in tasks {
        match t.await.unwrap() {
            Verdict::New => news += 1,
            Verdict::Duplicate { first_job } => {
                firsts.insert(first_job);
            }
            v => panic!("unexpected {v:?}"),
        }
    }
    cleanup(&mut admin, &prefix).await;
    assert_eq!(news, 1, "exactly one worker records the hash");
    assert!(firsts.len() <= 1, "{firsts:?}");
}

#[tokio::test]
async fn build_store_uses_redis_when_configured_and_connected() {
    let prefix = random_prefix();
    let settings = paperboy::config::Settings::load_with_env(
        None,
        vec![
            ("PAPERBOY__DEDUP__STORE".to_string(), "redis".to_string()),
            ("PAPERBOY__REDIS__URL".to_string(), redis_url()),
            ("PAPERBOY__REDIS__KEY_PREFIX".to_string(), prefix.clone()),
        ],
    )
    .unwrap();
    let store = paperboy::dedup::build_store(&settings, Some(connect().await))
        .await
        .unwrap();
    assert_eq!(store.kind(), "redis");
    let fp = fingerprint(UNRELATED);
    assert_eq!(
        store.check_and_record(&fp, "j1").await.unwrap(),
        Verdict::New
    );
    let mut admin = connect().await;
    let keys =
        RedisStore::from_settings(connect().await, &settings.redis, &settings.dedup).keys(&fp);
    let stored: usize = admin.hlen(&keys.exact[0]).await.unwrap();
    assert_eq!(
        cleanup(&mut admin, &prefix).await,
        1 + 4,
        "exact bucket + 4 band buckets"
    );
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn watch_redis_marks_redis_ready() {
    use std::sync::Arc;
    let health = Arc::new(paperboy::metrics::Health::new(true));
    assert_eq!(health.redis_ok(), Some(false));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(paperboy::metrics::watch_redis(
        connect().await,
        health.clone(),
        Duration::from_millis(100),
        shutdown.clone(),
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while health.redis_ok() != Some(true) {
        assert!(
            std::time::Instant::now() < deadline,
            "redis never marked ok"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("watch_redis stops on shutdown")
        .unwrap();
}

fn fp(hash_seed: &str, simhash: u64) -> paperboy::dedup::Fingerprint {
    paperboy::dedup::Fingerprint {
        hash: paperboy::dedup::content_hash(hash_seed),
        simhash,
    }
}

/// The Hamming distance over the packed band records is right on edge bits (sign bits included).
#[tokio::test]
async fn lua_hamming_matches_rust_on_edge_bits() {
    let prefix = random_prefix();
    let mut admin = connect().await;
    let store = RedisStore::new(connect().await, &prefix, Duration::from_secs(60), 3);
    let result = async {
        let base = 0xFFFF_FFFF_0000_0000u64 | 0x8000_0001;
        assert_eq!(
            store
                .check_and_record(&fp("base", base), "j0")
                .await
                .unwrap(),
            Verdict::New
        );
        for (n, flips) in [vec![63], vec![63, 31], vec![63, 32, 0], vec![31, 15, 47]]
            .into_iter()
            .enumerate()
        {
            let sim = flips.iter().fold(base, |s, b| s ^ (1u64 << b));
            let v = store
                .check_and_record(&fp(&format!("near{n}"), sim), &format!("j{}", n + 1))
                .await
                .unwrap();
            assert_eq!(
                v,
                Verdict::NearDuplicate {
                    of_hash: RedisStore::short_hash(&paperboy::dedup::content_hash("base")),
                    distance: hamming(base, sim)
                },
                "flips {flips:?}"
            );
        }
        // Four bits away, one in each band: not near at distance 3, so new.
        let far = base ^ (1 << 0) ^ (1 << 16) ^ (1 << 32) ^ (1 << 48);
        assert_eq!(
            store.check_and_record(&fp("far", far), "j9").await.unwrap(),
            Verdict::New
        );
        // Four bits away inside band 0: a candidate through bands 1-3, rejected by the distance.
        let cand = base ^ 0b1111;
        assert_eq!(
            store
                .check_and_record(&fp("cand", cand), "j10")
                .await
                .unwrap(),
            Verdict::New
        );
    };
    let outcome = std::panic::AssertUnwindSafe(result).catch_unwind().await;
    cleanup(&mut admin, &prefix).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Near-duplicates checked at the same time by several workers: one is new, the others point at it.
#[tokio::test]
async fn concurrent_near_duplicates_elect_one_original() {
    let prefix = random_prefix();
    let mut admin = connect().await;
    let base = 0x0123_4567_89AB_CDEFu64;
    let mut tasks = Vec::new();
    for i in 0..6u64 {
        let store = RedisStore::new(connect().await, &prefix, Duration::from_secs(60), 3);
        // Each differs from the base in one bit of band 0: all within distance 2 of each other.
        let f = fp(&format!("copy{i}"), base ^ (1 << i));
        tasks.push(tokio::spawn(async move {
            store
                .check_and_record(&f, &format!("job-{i}"))
                .await
                .unwrap()
        }));
    }
    let mut news = 0;
    for t in tasks {
        match t.await.unwrap() {
            Verdict::New => news += 1,
            Verdict::NearDuplicate { distance, .. } => assert!(distance <= 2),
            v => panic!("unexpected {v:?}"),
        }
    }
    cleanup(&mut admin, &prefix).await;
    assert_eq!(news, 1, "exactly one original");
}

/// Run `body`, then delete every key under `prefix` (also when `body` panics).
async fn with_cleanup<F: std::future::Future<Output = ()>>(prefix: &str, body: F) {
    let mut admin = connect().await;
    let outcome = std::panic::AssertUnwindSafe(body).catch_unwind().await;
    cleanup(&mut admin, prefix).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// A worker crashing after the record: the redelivered job (same job id), on another worker, finds
/// its own record and gets its first verdict again, exact and near.
#[tokio::test]
async fn a_redelivered_job_finds_its_own_record_exact_and_near() {
    let prefix = random_prefix();
    let ttl = Duration::from_secs(600);
    with_cleanup(&prefix, async {
        let first = RedisStore::new(connect().await, &prefix, ttl, 3);
        let a = fingerprint(&syndicated_on_site_a());
        let b = fingerprint(&syndicated_on_site_b());
        assert_eq!(
            first.check_and_record(&a, "job-a").await.unwrap(),
            Verdict::New
        );
        let near = first.check_and_record(&b, "job-b").await.unwrap();
        assert!(matches!(near, Verdict::NearDuplicate { .. }), "{near:?}");
        drop(first);
        for _ in 0..2 {
            let again = RedisStore::new(connect().await, &prefix, ttl, 3);
            assert_eq!(
                again.check_and_record(&a, "job-a").await.unwrap(),
                Verdict::New
            );
            assert_eq!(again.check_and_record(&b, "job-b").await.unwrap(), near);
        }
        // Exact only: the same.
        let exact = RedisStore::new(connect().await, &format!("{prefix}e:"), ttl, 0);
        assert_eq!(
            exact.check_and_record(&a, "job-a").await.unwrap(),
            Verdict::New
        );
        assert_eq!(
            exact.check_and_record(&a, "job-a").await.unwrap(),
            Verdict::New
        );
        assert_eq!(
            exact.check_and_record(&a, "job-x").await.unwrap(),
            Verdict::Duplicate {
                first_job: RedisStore::job_ref("job-a")
            }
        );
    })
    .await;
}

/// With a 2 s TTL (slices of 250 ms): a text is found in later slices until its slice expires, then its
/// keys are gone and the same text is new for another job.
#[tokio::test]
async fn ttl_slices_expire() {
    let prefix = random_prefix();
    with_cleanup(&prefix, async {
        let mut admin = connect().await;
        let store = RedisStore::new(connect().await, &prefix, Duration::from_secs(2), 3);
        let fp = fingerprint(UNRELATED);
        let keys = store.keys(&fp);
        assert_eq!(keys.exact.len(), 9, "8 slices per TTL + the current one");
        assert_eq!(
            store.check_and_record(&fp, "j1").await.unwrap(),
            Verdict::New
        );
        let pttl: i64 = admin.pttl(&keys.exact[0]).await.unwrap();
        assert!(pttl > 0 && pttl <= 2_250, "pttl {pttl}");
        for band in &keys.bands {
            let pttl: i64 = admin.pttl(&band[0]).await.unwrap();
            assert!(pttl > 0 && pttl <= 2_250, "band pttl {pttl}");
        }
        // A later slice still finds it.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_ne!(store.keys(&fp).exact[0], keys.exact[0], "a later slice");
        assert_eq!(
            store.check_and_record(&fp, "j2").await.unwrap(),
            Verdict::Duplicate {
                first_job: RedisStore::job_ref("j1")
            }
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        tokio::time::sleep(Duration::from_millis(
            keys.expire_at_ms.saturating_sub(now) + 300,
        ))
        .await;
        let live: usize = admin
            .exists(
                keys.exact
                    .iter()
                    .chain(keys.bands.iter().flatten())
                    .collect::<Vec<_>>(),
            )
            .await
            .unwrap();
        assert_eq!(live, 0, "every key of the first slice expired");
        assert_eq!(
            store.check_and_record(&fp, "j3").await.unwrap(),
            Verdict::New
        );
    })
    .await;
}

/// A full band bucket takes no more records: its size stays at the cap, the rest are counted.
#[tokio::test]
async fn band_bucket_caps_hold() {
    let prefix = random_prefix();
    with_cleanup(&prefix, async {
        let mut admin = connect().await;
        let store = RedisStore::new(connect().await, &prefix, Duration::from_secs(3600), 3)
            .with_band_cap(3);
        // Same band 0 (low 16 bits), the other 48 bits far apart: 8 unrelated texts in one bucket.
        let mut x = 0x1234_5678_9ABC_DEF0u64;
        let mut fps = Vec::new();
        for i in 0..8 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            fps.push(fp(&format!("cap{i}"), (x & !0xFFFF) | 0xBEEF));
        }
        let before = store.keys(&fps[0]);
        for (i, f) in fps.iter().enumerate() {
            assert_eq!(
                store.check_and_record(f, &format!("j{i}")).await.unwrap(),
                Verdict::New
            );
        }
        let after = store.keys(&fps[0]);
        let len: usize = admin.strlen(&after.bands[0][0]).await.unwrap();
        assert_eq!(len % store.band_record_bytes(0), 0);
        assert!(
            len <= 3 * store.band_record_bytes(0),
            "cap held: {len} bytes"
        );
        if before.bands[0][0] == after.bands[0][0] {
            assert_eq!(len, 3 * store.band_record_bytes(0));
            assert!(
                store.dropped_band_records() >= 5,
                "{}",
                store.dropped_band_records()
            );
        }
        use paperboy::dedup::Seen as _;
        assert_eq!(store.evictions(), store.dropped_band_records());
        // The bucket still finds the texts it holds.
        let near = fp("near0", fps[0].simhash ^ 1 << 40);
        assert!(matches!(
            store.check_and_record(&near, "jn").await.unwrap(),
            Verdict::NearDuplicate { distance: 1, .. }
        ));
    })
    .await;
}

/// The reference a near-duplicate names is kept once, in band 0's records. A match found in another
/// band is resolved through the original's band-0 record; when that record was never kept (its bucket
/// was full), the text is taken as new rather than named after a text the store cannot name.
#[tokio::test]
async fn a_near_duplicate_found_outside_band_0_names_its_original_or_is_new() {
    let prefix = random_prefix();
    with_cleanup(&prefix, async {
        let store = RedisStore::new(connect().await, &prefix, Duration::from_secs(3600), 3)
            .with_band_cap(1);
        let a = fp("ref-a", 0x0123_4567_89AB_CDEF);
        // Same band 0 as `a`, every other band far away: fills a's band-0 bucket (cap 1) first.
        let filler = fp("ref-filler", (!a.simhash & !0xFFFF) | (a.simhash & 0xFFFF));
        let b = fp("ref-b", 0x0FED_CBA9_8765_4321);
        assert_eq!(
            store.check_and_record(&b, "jb").await.unwrap(),
            Verdict::New
        );
        let bucket_before = store.keys(&filler).bands[0][0].clone();
        assert_eq!(
            store.check_and_record(&filler, "jf").await.unwrap(),
            Verdict::New
        );
        assert_eq!(
            store.check_and_record(&a, "ja").await.unwrap(),
            Verdict::New
        );
        // Near `b` through bands 1-3 (two bits of band 0 flipped): named after b via b's band-0 record.
        assert_eq!(
            store
                .check_and_record(&fp("ref-nb", b.simhash ^ 0b11), "jnb")
                .await
                .unwrap(),
            Verdict::NearDuplicate {
                of_hash: RedisStore::short_hash(&b.hash),
                distance: 2
            }
        );
        // Near `a` through bands 1-3, but a's band-0 record was dropped at the cap: new (unless a
        // new time slice began between the filler and `a`, which gave `a` an empty bucket).
        let na = store
            .check_and_record(&fp("ref-na", a.simhash ^ 0b11), "jna")
            .await
            .unwrap();
        if store.keys(&filler).bands[0][0] == bucket_before {
            assert_eq!(na, Verdict::New);
        }
    })
    .await;
}
