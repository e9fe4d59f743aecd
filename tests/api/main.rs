//! Black-box HTTP tests: each test starts the real server on a random port,
//! with its own database, and talks to it as a client would.

mod helpers;

mod capacity;
mod walkthrough;
