//! The Ferrogrid engine: configuration, domain model, storage, repair queue, input processor,
//! output processor, tasks and jobs, GraphQL, HTTP server, security and metrics, wired together by [`app`]. The binary `ferrogrid` is a
//! thin command line over [`app::run`] and [`app::check`].

pub mod actors;
pub mod app;
pub mod cases;
pub mod config;
pub mod graphql;
pub mod http;
pub mod index_builder;
pub mod jobs;
pub mod journal;
pub mod lifecycle;
pub mod live;
pub mod metrics;
pub mod model;
pub mod notifier;
pub mod output;
pub mod parked;
pub mod processor;
pub mod reads;
pub mod remote;
pub mod repair;
pub mod repository;
pub mod runtime;
pub mod scheduler;
pub mod security;
pub mod storage;
