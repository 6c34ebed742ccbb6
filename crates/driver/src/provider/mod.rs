//! Talking to providers: finding `<provider>.sock` in the provider
//! directories ([`dirs`]) and calling the provider API ([`client`]).

pub mod client;
pub mod dirs;
pub mod health;

pub use client::{Error, ProviderClients};
pub use dirs::ProviderName;
