//! Dedup: PURE content hashing (+ SimHash) and the `Seen` stores (memory, Redis).
//! (Placeholder memory store: replaced by the dedup work.)

pub mod hash;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

pub use hash::content_hash;

/// What identifies an article's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub hash: String,
    pub simhash: u64,
}

pub fn fingerprint(text: &str) -> Fingerprint {
    Fingerprint {
        hash: content_hash(text),
        simhash: 0,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    New,
    Duplicate { first_job: String },
    NearDuplicate { of_hash: String, distance: u32 },
}

#[derive(Debug, thiserror::Error)]
pub enum DedupError {
    #[error("dedup store unavailable: {0}")]
    Unavailable(String),
}

pub trait Seen: Send + Sync + 'static {
    fn check_and_record(
        &self,
        fp: &Fingerprint,
        job_id: &str,
    ) -> impl Future<Output = Result<Verdict, DedupError>> + Send;
}

#[derive(Default)]
pub struct MemoryStore {
    seen: Mutex<HashMap<String, String>>,
}

impl Seen for MemoryStore {
    async fn check_and_record(
        &self,
        fp: &Fingerprint,
        job_id: &str,
    ) -> Result<Verdict, DedupError> {
        let mut m = self.seen.lock().expect("poisoned");
        match m.get(&fp.hash) {
            Some(j) if j != job_id => Ok(Verdict::Duplicate {
                first_job: j.clone(),
            }),
            Some(_) => Ok(Verdict::New),
            None => {
                m.insert(fp.hash.clone(), job_id.to_string());
                Ok(Verdict::New)
            }
        }
    }
}

pub enum Store {
    Memory(MemoryStore),
}

impl Seen for Store {
    async fn check_and_record(
        &self,
        fp: &Fingerprint,
        job_id: &str,
    ) -> Result<Verdict, DedupError> {
        match self {
            Store::Memory(m) => m.check_and_record(fp, job_id).await,
        }
    }
}

pub async fn build_store(
    _settings: &crate::config::Settings,
    _redis: Option<redis::aio::ConnectionManager>,
) -> Result<Store, DedupError> {
    Ok(Store::Memory(MemoryStore::default()))
}
