//! The input processor: one object's way from its input to storage (or an output). TDG's
//! stages: input pipeline -> connector routing -> classifiers -> routing pipeline -> validation
//! against the model run on a script worker ([`prepare`]); storage runs on the storage writer
//! ([`StoreWriter`]), many objects a commit. Storing an object and removing its repair-queue
//! entry is one atomic commit; any failure leaves the entry with the stage, the function and the
//! error.

mod stages;
mod writer;

pub use stages::{prepare, send_failed, store, Done, Finish, Prepared, ToSend, ToStore};
pub use writer::{StoreJob, StoreWriter, Then};

/// The message of a caught panic.
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
