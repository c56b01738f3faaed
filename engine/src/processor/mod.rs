//! The input processor: one object's way from its input to storage (or an output). TDG's
//! stages: input pipeline -> connector routing -> classifiers -> routing pipeline -> validation
//! against the model run on a script worker ([`prepare`]); storage runs on the storage actor
//! ([`StorageHandle`]), many objects a commit. Storing an object and removing its repair-queue
//! entry is one atomic commit; any failure leaves the entry with the stage, the function and the
//! error.

mod stages;
mod storage_actor;

pub use stages::{prepare, send_failed, store, Done, Finish, Prepared, ToSend, ToStore};
pub use storage_actor::{StorageHandle, StoreJob, StoreSender, Then};

pub(crate) use ferrogrid_pipelines::panic_text;

#[cfg(test)]
mod tests;
