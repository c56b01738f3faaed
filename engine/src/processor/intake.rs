//! Durable acceptance: the [`Intake`] of every input. An object is accepted when a permit is
//! free (else `Busy`: 503 with Retry-After, Kafka pauses), its entry is queued with the intake
//! log, and the log has it on disk; then it goes to the router in a task of its own, so a client
//! that goes away does not stop it.

use super::{Processor, State};
use crate::metrics::metrics;
use crate::repair::RepairQueue;
use crate::storage::IntakeLogError;
use ferrogrid_connectors::{Accepted, BoxFuture, Intake, IntakeError, Outcome, OutcomeStatus, Received, Wait};
use std::sync::Arc;

/// The processor as the intake of its inputs.
#[derive(Clone)]
pub struct ProcessorIntake(pub Arc<Processor>);

impl Intake for ProcessorIntake {
    fn accept(&self, received: Received, wait: Wait) -> BoxFuture<Result<Accepted, IntakeError>> {
        let engine = &self.0;
        engine.accept(received, wait)
    }
}

impl Processor {
    fn accept(self: &Arc<Self>, received: Received, wait: Wait) -> BoxFuture<Result<Accepted, IntakeError>> {
        match self.state() {
            State::Ready => {}
            State::Starting => return Box::pin(async { Err(IntakeError::Starting) }),
            State::Draining => return Box::pin(async { Err(IntakeError::Draining) }),
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            return Box::pin(async { Err(IntakeError::Busy) });
        };
        let mut entry = RepairQueue::new_entry(&received.input, received.source, received.payload);
        entry.version = received.version;
        let id = entry.id.clone();
        // While it is processed it lives only in the intake log (no operator action can reach
        // it); the commit that ends its processing settles it.
        let durable = match self.intake_log.append(&mut entry) {
            Ok((durable, unsettled)) => {
                entry.unsettled = Some(Arc::new(unsettled));
                durable
            }
            Err(IntakeLogError::Closed) => return Box::pin(async { Err(IntakeError::Draining) }),
            Err(e) => return Box::pin(async move { Err(IntakeError::Internal(e.to_string())) }),
        };
        metrics().objects_received.with_label_values(&[&received.input]).inc();
        tracing::debug!(id = %id, input = %received.input, "accepted");
        // Processing starts once the record is on disk, in a task of its own, so a client that
        // goes away does not stop it; the answer waits for the parts `wait` asks for.
        let (durable_tx, durable_rx) = tokio::sync::oneshot::channel::<Result<(), IntakeLogError>>();
        let (outcome_tx, outcome_rx) = tokio::sync::oneshot::channel::<Option<Outcome>>();
        let engine = self.clone();
        tokio::spawn(async move {
            let logged = durable.await;
            let failed = logged.is_err();
            let _ = durable_tx.send(logged);
            if failed {
                // Refused to the client (the intake log marked its record done), so it must not
                // be processed: the client still has it.
                if let Some(unsettled) = &entry.unsettled {
                    unsettled.settle();
                }
                return;
            }
            metrics().repair_depth.inc();
            let processing = engine.submit(entry, permit, wait == Wait::Outcome);
            // Processing goes on without this task; it waits only for an answer that waits for
            // the outcome (not waiting spares the worker's wake of this thread: a system call).
            if wait == Wait::Outcome {
                let _ = outcome_tx.send(processing.await);
            }
        });
        Box::pin(async move {
            match durable_rx.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(IntakeError::Internal(e.to_string())),
                Err(_) => return Err(IntakeError::Draining),
            }
            match wait {
                Wait::Durable => Ok(Accepted { id, outcome: None }),
                Wait::Outcome => {
                    // Durable already: a shutdown before the end is reported, not refused.
                    let outcome = outcome_rx.await.ok().flatten().unwrap_or_else(|| Outcome {
                        id: id.clone(),
                        status: OutcomeStatus::Pending,
                        routing_key: None,
                        type_name: None,
                        version: None,
                        error: Some(
                            "the engine shut down before processing ended; it resumes at the next start".into(),
                        ),
                    });
                    Ok(Accepted { id, outcome: Some(outcome) })
                }
            }
        })
    }
}
