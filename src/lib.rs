//! swf-warden: a policy-enforcing SigV4 authorization proxy for Amazon SWF.
//!
//! The request path, in the order `handler` runs it (SPEC's five steps):
//! - [`sigv4`]: authenticate the caller (Signature Version 4, the proxy as verifier);
//! - [`swf`] and [`resolve`]: the operation, its strictly parsed input, and the resource it
//!   touches (a domain ARN, directly or through a sealed task token from [`tokens`]);
//! - [`policy`]: IAM evaluation, which alone can issue the `Permit` that forwarding requires;
//! - [`audit`]: a record of every refusal, written before the answer;
//! - [`forward`]: the call re-signed with the proxy's own credentials, answer streamed back.
//!
//! [`error`] maps every refusal to its AWS wire form in one place. [`config`] loads and
//! validates everything before [`server`] binds a port; [`app`] holds the built state.

#![forbid(unsafe_code)]

pub mod access;
pub mod admin;
pub mod app;
pub mod audit;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod diag;
pub mod error;
pub mod forward;
pub mod handler;
pub mod identity;
pub mod impact;
pub mod lifecycle;
pub mod metrics;
pub mod policy;
pub mod quota;
pub mod resolve;
pub mod runtime;
pub mod secret;
pub mod server;
pub mod sigv4;
pub mod sts;
pub mod swf;
pub mod telemetry;
#[cfg(test)]
mod testing;
pub mod tls;
pub mod tokens;
pub mod visibility;
