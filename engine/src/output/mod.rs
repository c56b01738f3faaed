//! The output processor (TDG's `output_processor`): stored objects are queued for their outputs
//! in the commit that stores them ([`OutputQueue::stage_in`]), delivered by one sender per
//! output with retries, and parked in the output repair queue when they cannot be delivered.
//!
//! | file | what |
//! | --- | --- |
//! | `queue.rs` | the persistent queue: pending deliveries per output, parked ones, operator actions |
//! | `sender.rs` | the sender tasks: preprocessing pipeline, send, backoff, park |

pub(crate) mod queue;
mod sender;

pub use queue::{Content, Delivery, OutputQueue, ParkedFilter};
pub use sender::{backoff, OutputProcessor};

#[cfg(test)]
mod tests;
