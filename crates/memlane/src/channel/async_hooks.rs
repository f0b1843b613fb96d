//! The channel's events as sources for the async reactor
//! (`crate::asynk`): each holds the ring, so the words stay mapped for as
//! long as the reactor may read them.

use std::sync::Arc;

use super::region::HasRegion;
use super::shm::ShmRing;
use crate::asynk::reactor::WaitSource;
use crate::sync::event_word::EventWord;
use crate::sync::Barrier;

/// Publishers → subscribers.
pub(crate) struct DataEvent(pub(crate) Arc<ShmRing>);

/// Subscribers → publishers.
pub(crate) struct SpaceEvent(pub(crate) Arc<ShmRing>);

impl WaitSource for DataEvent {
    fn event(&self) -> &EventWord {
        self.0.region().data_event()
    }
}

impl WaitSource for SpaceEvent {
    fn event(&self) -> &EventWord {
        self.0.region().space_event()
    }
}

/// The ring's wait/notify barrier kind.
pub(crate) fn barrier(ring: &ShmRing) -> Barrier {
    ring.region().geometry().barrier
}
