//! The CSI services kubelet calls. Handlers are thin: they validate, call
//! the module that does the work, and map its error to a gRPC status.

pub mod controller;
pub mod identity;
pub mod node;
