//! The compact dedup store on a private 3-master Redis Cluster: every call touches the keys of one
//! slot (no CROSSSLOT), verdicts as on a single Redis, a redelivered job finds its own record.

mod private_services;

use std::time::Duration;

use paperboy::dedup::{fingerprint, Fingerprint, RedisStore, Seen, Verdict};
use private_services::{cli, RedisCluster};

fn fp(seed: &str, simhash: u64) -> Fingerprint {
    Fingerprint {
        hash: paperboy::dedup::content_hash(seed),
        simhash,
    }
}

/// A connection to `cluster` as `paperboy work` makes it (`redis.mode = "cluster"`).
async fn connect(cluster: &RedisCluster) -> paperboy::redis_conn::RedisConn {
    let settings = paperboy::config::Settings::load_with_env(
        None,
        vec![
            ("PAPERBOY__REDIS__MODE".to_string(), "cluster".to_string()),
            ("PAPERBOY__REDIS__URL".to_string(), cluster.seeds()),
        ],
    )
    .unwrap();
    let conn = paperboy::redis_conn::connect(&settings)
        .await
        .unwrap()
        .expect("cluster connection");
    assert!(conn.is_cluster());
    conn
}

#[tokio::test]
async fn cluster_checks_touch_one_slot_per_call() {
    let cluster = RedisCluster::start(3);
    let prefix = format!("paperboy-test-{}:", uuid::Uuid::new_v4().simple());
    let conn = connect(&cluster).await;
    let ttl = Duration::from_secs(600);
    let store = RedisStore::new(conn.clone(), &prefix, ttl, 3);
    let base = 0x0123_4567_89AB_CDEFu64;
    let a = fp("a", base);
    let near = fp("near", base ^ 1 << 3 ^ 1 << 50);
    assert_eq!(
        store.check_and_record(&a, "ja").await.unwrap(),
        Verdict::New
    );
    assert_eq!(
        store.check_and_record(&a, "jb").await.unwrap(),
        Verdict::Duplicate {
            first_job: RedisStore::job_ref("ja")
        }
    );
    let v = store.check_and_record(&near, "jn").await.unwrap();
    assert_eq!(
        v,
        Verdict::NearDuplicate {
            of_hash: RedisStore::short_hash(&a.hash),
            distance: 2
        }
    );
    // Matched in band 0 itself (bands 1-3 each one bit off): the hash is in the record read.
    let near0 = fp("near0", base ^ 1 << 20 ^ 1 << 40 ^ 1 << 60);
    assert_eq!(
        store.check_and_record(&near0, "jn0").await.unwrap(),
        Verdict::NearDuplicate {
            of_hash: RedisStore::short_hash(&a.hash),
            distance: 3
        }
    );
    // Redelivered on another worker: own records, first verdicts.
    let other = RedisStore::new(conn.clone(), &prefix, ttl, 3);
    assert_eq!(
        other.check_and_record(&a, "ja").await.unwrap(),
        Verdict::New
    );
    assert_eq!(other.check_and_record(&near, "jn").await.unwrap(), v);
    let unrelated = fingerprint("Something else entirely, about frogs in the mountains.");
    assert_eq!(
        other.check_and_record(&unrelated, "ju").await.unwrap(),
        Verdict::New
    );
    // Exact only: one script on one slot.
    let exact = RedisStore::new(conn, &format!("{prefix}e:"), ttl, 0);
    assert_eq!(
        exact.check_and_record(&a, "ja").await.unwrap(),
        Verdict::New
    );
    assert_eq!(
        exact.check_and_record(&a, "ja").await.unwrap(),
        Verdict::New
    );

    // Each call's key group (exact slices; one band's slices) hashes to one slot.
    let port = cluster.nodes[0].port;
    let slot = |k: &str| cli(port, &["CLUSTER", "KEYSLOT", k]).trim().to_string();
    for f in [&a, &near, &unrelated] {
        let keys = store.keys(f);
        assert_eq!(keys.bands.len(), 4);
        for group in std::iter::once(&keys.exact).chain(&keys.bands) {
            let first = slot(&group[0]);
            assert!(group.iter().all(|k| slot(k) == first), "{group:?}");
        }
    }
    // No node answered CROSSSLOT (or any other error) to a dedup call.
    for n in &cluster.nodes {
        let errors = cli(n.port, &["INFO", "errorstats"]);
        assert!(!errors.contains("CROSSSLOT"), "{errors}");
    }
    // Keys: 5 exact buckets (4 texts + the exact-only store) and the 4 band buckets of each of the 2
    // indexed texts (a near-duplicate is not indexed), fewer where buckets coincide.
    let mut total = 0;
    for n in &cluster.nodes {
        total += cli(n.port, &["DBSIZE"]).trim().parse::<usize>().unwrap();
    }
    assert!(
        (6..=5 + 2 * 4).contains(&total),
        "keys on the cluster: {total}"
    );
}

/// On a cluster a check runs one call per band, all at once, so two texts checked at the same moment
/// can each find the other (in different bands). Groups of 6 texts, each pair within distance 2 and
/// meeting in different bands, checked at once by 6 workers on connections of their own: in every group at least
/// one text is new (no group drops all its copies: nothing lost), and every near-duplicate names a
/// text of its own group.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn near_duplicates_checked_at_once_on_a_cluster_keep_one_original() {
    let cluster = RedisCluster::start(3);
    let prefix = format!("paperboy-test-{}:", uuid::Uuid::new_v4().simple());
    let mut conns = Vec::new();
    for _ in 0..6 {
        conns.push(connect(&cluster).await);
    }
    const ROUNDS: usize = 100;
    let ttl = Duration::from_secs(600);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut news_total = 0;
    for round in 0..ROUNDS {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // Bits 0, 11, 22, 33, 44, 55: bands 0, 0, 1, 2, 2, 3 of 16 bits, so pairs share different
        // lowest bands.
        let group: Vec<Fingerprint> = (0..6)
            .map(|i| fp(&format!("r{round}-{i}"), seed ^ 1 << (i * 11)))
            .collect();
        let names: Vec<String> = group
            .iter()
            .map(|f| RedisStore::short_hash(&f.hash))
            .collect();
        let tasks: Vec<_> = group
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let store = RedisStore::new(conns[i].clone(), &prefix, ttl, 3);
                let f = f.clone();
                tokio::spawn(
                    async move { store.check_and_record(&f, &format!("r{round}-j{i}")).await },
                )
            })
            .collect();
        let mut news = 0;
        for t in tasks {
            match t.await.unwrap().unwrap() {
                Verdict::New => news += 1,
                Verdict::NearDuplicate { of_hash, distance } => {
                    assert!(distance <= 2, "{distance}");
                    assert!(
                        names.contains(&of_hash),
                        "round {round}: {of_hash} not of the group"
                    );
                }
                v => panic!("round {round}: {v:?}"),
            }
        }
        assert!(news >= 1, "round {round}: every copy dropped");
        news_total += news;
    }
    println!("{news_total} originals in {ROUNDS} groups of 6 checked at once");
    // Checked one after the other, more than a second apart: one original per group.
    let store = RedisStore::new(conns[0].clone(), &format!("{prefix}seq:"), ttl, 3);
    let base = 0x0123_4567_89AB_CDEFu64;
    let first = fp("seq-first", base);
    assert_eq!(
        store.check_and_record(&first, "s0").await.unwrap(),
        Verdict::New
    );
    // A copy with a lower SimHash right after: not yet taken as a copy of a text this recent.
    let lower = fp("seq-lower", base ^ 1 << 0);
    assert!(lower.simhash < base);
    assert_eq!(
        store.check_and_record(&lower, "s1").await.unwrap(),
        Verdict::New
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let later = fp("seq-later", base ^ 1 << 0 ^ 1 << 40);
    assert!(matches!(
        store.check_and_record(&later, "s2").await.unwrap(),
        Verdict::NearDuplicate { .. }
    ));
}

/// A worker that crashed on Redis Cluster after a near-duplicate's check calls (its exact record says
/// `New`, its band records are in) but before the amend: the redelivered job finds its own records,
/// reads only what was there before them, reaches the same verdict, and takes its band records out.
#[tokio::test]
async fn a_near_duplicate_redelivered_after_a_crash_mid_check_on_a_cluster_gets_its_verdict() {
    let cluster = RedisCluster::start(3);
    let prefix = format!("paperboy-test-{}:", uuid::Uuid::new_v4().simple());
    let conn = connect(&cluster).await;
    let store = RedisStore::new(conn.clone(), &prefix, Duration::from_secs(600), 3);
    let base = 0x0123_4567_89AB_CDEFu64;
    let original = fp("original", base);
    // Bits in bands 0 and 3: lowest shared band 1; a higher SimHash, so found at once.
    let near = fp("near", base ^ 1 << 3 ^ 1 << 50);
    assert!(near.simhash > original.simhash);
    assert_eq!(
        store.check_and_record(&original, "jo").await.unwrap(),
        Verdict::New
    );
    let verdict = store.check_and_record(&near, "jn").await.unwrap();
    assert!(
        matches!(verdict, Verdict::NearDuplicate { .. }),
        "{verdict:?}"
    );
    let keys = store.keys(&near);
    let band_values = || async {
        let mut out = Vec::new();
        for ks in &keys.bands {
            let v: Option<Vec<u8>> = redis::cmd("GET")
                .arg(&ks[0])
                .query_async(&mut conn.clone())
                .await
                .unwrap();
            out.push(v.unwrap_or_default());
        }
        out
    };
    let settled = band_values().await;
    // The state a crash before the amend leaves: a copy of the near-duplicate (another job) puts its
    // band records back (a duplicate's records stay), and its exact record is reset to `New` for "jn".
    assert!(matches!(
        store.check_and_record(&near, "jcopy").await.unwrap(),
        Verdict::Duplicate { .. }
    ));
    assert_ne!(
        band_values().await,
        settled,
        "the copy's band records are in"
    );
    let hex = near.hash.strip_prefix("blake3:").unwrap();
    let bytes: Vec<u8> = (0..8)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let job = blake3::hash(b"jn").as_bytes()[..6].to_vec();
    let _: () = redis::cmd("HSET")
        .arg(&keys.exact[0])
        .arg(&bytes[2..8])
        .arg(job)
        .query_async(&mut conn.clone())
        .await
        .unwrap();
    // Redelivered on another worker: the same verdict, and the band records out again.
    let again = RedisStore::new(conn.clone(), &prefix, Duration::from_secs(600), 3);
    assert_eq!(again.check_and_record(&near, "jn").await.unwrap(), verdict);
    assert_eq!(
        band_values().await,
        settled,
        "its band records are taken out"
    );
    assert_eq!(
        again.check_and_record(&original, "jo").await.unwrap(),
        Verdict::New
    );
}
