//! The input processor: one object's way from its input to storage (or an output), run on a
//! script worker. TDG's stages: input pipeline -> connector routing -> classifiers -> routing
//! pipeline -> validation against the model -> storage. Storing the object and removing its
//! repair-queue entry is one atomic commit; any failure leaves the entry with the stage, the
//! function and the error.

mod stages;

pub use stages::{process, Done};
