//! Admission of heavy work: how many requests compute at once, per token and overall,
//! and how many may wait their turn.
//!
//! A request first takes a place in the queue ([`Admission::enqueue`]); a full queue
//! (overall or the token's share) refuses it at once, and the caller answers 429 with
//! `Retry-After`. A queued request then waits for one of its token's running slots and
//! after that for one of the overall slots ([`Waiting::admit`]). Both waits are first
//! come, first served (Tokio's semaphore is fair), and a token holds at most its own
//! share of the overall slots, so one user's queries cannot take every slot while
//! another's wait. Dropping a [`Waiting`] or a [`Ticket`] (the request finished, timed
//! out or its client went away) gives the places back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Limits of one kind of work.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests computing at once, overall.
    pub running: usize,
    /// Requests computing at once for one token.
    pub running_per_token: usize,
    /// Requests waiting, overall.
    pub queued: usize,
    /// Requests waiting for one token.
    pub queued_per_token: usize,
}

/// The queue was full: the request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every waiting place is taken.
    Full,
    /// The token's waiting places are taken.
    TokenFull,
}

#[derive(Default)]
struct Queue {
    waiting: usize,
    per_token: HashMap<String, (usize, Arc<Semaphore>)>,
}

struct Inner {
    limits: Limits,
    running: Arc<Semaphore>,
    queue: Mutex<Queue>,
}

/// Admission of one kind of work (analyst SQL, reports).
#[derive(Clone)]
pub struct Admission(Arc<Inner>);

/// A request holding a waiting place.
pub struct Waiting {
    inner: Arc<Inner>,
    token: String,
    mine: Arc<Semaphore>,
}

/// A request allowed to compute; dropping it frees its slots.
pub struct Ticket {
    _token: OwnedSemaphorePermit,
    _overall: OwnedSemaphorePermit,
}

impl Admission {
    pub fn new(limits: Limits) -> Admission {
        let limits = Limits {
            running: limits.running.max(1),
            running_per_token: limits.running_per_token.max(1),
            queued: limits.queued,
            queued_per_token: limits.queued_per_token,
        };
        Admission(Arc::new(Inner {
            running: Arc::new(Semaphore::new(limits.running)),
            limits,
            queue: Mutex::new(Queue::default()),
        }))
    }

    /// Take a waiting place for `token`'s request, or refuse it. The places are the
    /// free running slots plus the queue, overall and for the token.
    pub fn enqueue(&self, token: &str) -> Result<Waiting, Refused> {
        let l = self.0.limits;
        let mut q = self.0.queue.lock().unwrap_or_else(|p| p.into_inner());
        let free = self.0.running.available_permits();
        if q.waiting >= l.queued + free {
            return Err(Refused::Full);
        }
        // one entry per token that ever asked (tokens are few and known): never
        // removed, so a token's running requests always count against its share
        let entry = q
            .per_token
            .entry(token.to_string())
            .or_insert_with(|| (0, Arc::new(Semaphore::new(l.running_per_token))));
        if entry.0 >= l.queued_per_token + entry.1.available_permits() {
            return Err(Refused::TokenFull);
        }
        entry.0 += 1;
        let mine = entry.1.clone();
        q.waiting += 1;
        Ok(Waiting {
            inner: self.0.clone(),
            token: token.to_string(),
            mine,
        })
    }

    /// Requests computing now (for tests and metrics).
    pub fn running(&self) -> usize {
        self.0.limits.running
            - self
                .0
                .running
                .available_permits()
                .min(self.0.limits.running)
    }
}

impl Waiting {
    /// Wait for a slot of the token, then an overall slot. Cancel-safe: dropping the
    /// future gives everything back.
    pub async fn admit(self) -> Ticket {
        // the semaphores live as long as the admission and are never closed
        let token = match self.mine.clone().acquire_owned().await {
            Ok(p) => p,
            Err(_) => unreachable_closed(),
        };
        let overall = match self.inner.running.clone().acquire_owned().await {
            Ok(p) => p,
            Err(_) => unreachable_closed(),
        };
        drop(self);
        Ticket {
            _token: token,
            _overall: overall,
        }
    }
}

#[cold]
fn unreachable_closed() -> ! {
    // neither semaphore is ever closed: `Semaphore::close` is not called anywhere
    panic!("admission semaphore closed")
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut q = self.inner.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.waiting = q.waiting.saturating_sub(1);
        if let Some(e) = q.per_token.get_mut(&self.token) {
            e.0 = e.0.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            running: 2,
            running_per_token: 1,
            queued: 2,
            queued_per_token: 1,
        }
    }

    #[tokio::test]
    async fn a_token_holds_at_most_its_share_and_the_queue_is_bounded() {
        let a = Admission::new(limits());
        // token x: one running, one queued, the third refused
        let x1 = a.enqueue("x").expect("x1").admit().await;
        let x2 = a.enqueue("x").expect("x2");
        assert_eq!(a.enqueue("x").err(), Some(Refused::TokenFull));
        // token y still gets the second slot at once
        let y1 = a.enqueue("y").expect("y1").admit().await;
        assert_eq!(a.running(), 2);
        // z queues (x2 and z wait: the queue of 2 is full), w is refused
        let z1 = a.enqueue("z").expect("z1");
        assert_eq!(a.enqueue("w").err(), Some(Refused::Full));
        // x finishing lets its queued request run; z still waits for an overall slot
        drop(x1);
        let x2 = tokio::time::timeout(std::time::Duration::from_secs(1), x2.admit())
            .await
            .expect("x2 admitted");
        let z_turn = tokio::spawn(z1.admit());
        tokio::task::yield_now().await;
        assert!(!z_turn.is_finished());
        drop(y1);
        let _z = tokio::time::timeout(std::time::Duration::from_secs(1), z_turn)
            .await
            .expect("z admitted")
            .expect("join");
        drop(x2);
        assert_eq!(a.running(), 1);
    }

    #[tokio::test]
    async fn a_cancelled_wait_gives_its_place_back() {
        let a = Admission::new(limits());
        let _x = a.enqueue("x").expect("x").admit().await;
        let _y = a.enqueue("y").expect("y").admit().await;
        for _ in 0..5 {
            let w = a.enqueue("z").expect("z");
            // the wait times out: the place is given back
            let r = tokio::time::timeout(std::time::Duration::from_millis(10), w.admit()).await;
            assert!(r.is_err());
        }
        assert!(a.enqueue("z").is_ok());
    }
}
