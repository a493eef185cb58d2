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

#[tokio::test]
async fn cluster_checks_touch_one_slot_per_call() {
    let cluster = RedisCluster::start(3);
    let prefix = format!("paperboy-test-{}:", uuid::Uuid::new_v4().simple());
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
