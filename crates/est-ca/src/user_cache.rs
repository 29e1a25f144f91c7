//! A short-lived cache of user records in front of the store.
//!
//! Every HTTP-authenticated request looks its user up; under load that read was the largest
//! per-request cost after the durable write (a round trip to the database's worker thread).
//! Records are kept for [`TTL`], so a user added, changed or removed with `estuary user` takes
//! effect within that time on a running server. Misses are cached too (a burst of guesses at
//! one unknown name costs one read), and the cache is bounded: when full it starts over.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{Store, StoreError, UserRecord};

/// How long a looked-up user record (or its absence) is trusted.
pub const TTL: Duration = Duration::from_secs(1);

/// Most names held at once.
const CAPACITY: usize = 4_096;

#[derive(Debug, Default)]
pub(crate) struct UserCache {
    entries: Mutex<HashMap<String, (Instant, Option<UserRecord>)>>,
}

impl UserCache {
    pub(crate) async fn get(
        &self,
        store: &dyn Store,
        name: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        if let Ok(map) = self.entries.lock()
            && let Some((at, rec)) = map.get(name)
            && at.elapsed() < TTL
        {
            return Ok(rec.clone());
        }
        let rec = store.get_user(name).await?;
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= CAPACITY {
                map.clear();
            }
            map.insert(name.to_string(), (Instant::now(), rec.clone()));
        }
        Ok(rec)
    }
}
