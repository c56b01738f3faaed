//! The output processor (TDG's `output_processor`): stored objects are queued for their outputs
//! in the commit that stores them ([`OutputQueue::stage_in`]), delivered by one actor per
//! output with retries, and parked in the output repair queue when they cannot be delivered.
//!
//! | file | what |
//! | --- | --- |
//! | `queue.rs` | the persistent queue: pending deliveries per output, parked ones, operator actions |
//! | `actor.rs` | one supervised actor per output: preprocessing pipeline, send, backoff, park |

mod actor;
pub(crate) mod queue;

pub use actor::{backoff, OutputProcessor};
pub use queue::{Content, Delivery, OutputQueue};

#[cfg(test)]
mod tests;
