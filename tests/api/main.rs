//! Black-box HTTP tests: each test starts the real server on a random port,
//! with its own database, and talks to it as a client would.

mod hardening;
mod helpers;

mod audit;
mod auth;
mod browser;
mod cache;
mod capacity;
mod checkins;
mod cli;
mod console;
mod console_manage;
mod conventions;
mod door;
mod events;
mod fixes;
mod golden;
mod groups;
mod holds;
mod hosts;
mod housekeeping;
mod import_django;
mod logs;
mod mail;
mod matrix;
mod media;
mod metrics;
mod notices;
mod openapi;
mod paying;
mod payments;
mod plans;
mod public_pages;
mod registrations;
mod regressions;
mod signup;
mod tickets;
mod time_zones;
mod upgrade;
mod users;
mod vouchers;
mod waitlist;
mod walkthrough;
mod webhooks;
