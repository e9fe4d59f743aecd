//! The mails that carry a one-use link: verifying a new account's address,
//! choosing a new password (`domain::accounts::links`).

use super::Outcome;
use super::letters::{Action, Letter, greeting};
use crate::db::entities::outbox;
use crate::db::links::{self, LinkPayload, Purpose};
use crate::state::AppState;

/// Runs one claimed link mail: skipped when its link was used, expired or
/// its account deleted meanwhile.
pub async fn run_job(state: &AppState, job: &outbox::Model, purpose: Purpose) -> Outcome {
    let Some(payload) = job
        .payload
        .as_deref()
        .and_then(|p| serde_json::from_str::<LinkPayload>(p).ok())
    else {
        return Outcome::Skipped("the job carries no link".into());
    };
    let found = links::mailable(state.db.conn(), &state.link_key, &payload, crate::db::now()).await;
    let (account, link, expires_at) = match found {
        Ok(Some(found)) => found,
        Ok(None) => {
            return Outcome::Skipped("the link was used or expired, or its account deleted".into());
        }
        Err(e) => return Outcome::Failed(e.into()),
    };
    let until = expires_at
        .with_timezone(&state.config.time_zone)
        .format("%a %-d %b %Y, %H:%M %Z")
        .to_string();
    let letter = match purpose {
        Purpose::VerifyEmail => Letter {
            to: account.email.clone(),
            subject: "Verify your e-mail address for DicoEvent".into(),
            greeting: greeting(&account),
            headline: "Please confirm that this is your e-mail address.".into(),
            event: None,
            action: Some(Action {
                label: "Verify my address".into(),
                url: link,
            }),
            ticket: None,
            details: vec![
                format!(
                    "Your username is {}. Once your address is verified you can register for events.",
                    account.username
                ),
                format!("The link works once, until {until}."),
            ],
            footer: "Sent by DicoEvent because this address was used to create an account. If that was not you, ignore this mail: nothing happens without the link.".into(),
        },
        Purpose::PasswordReset => Letter {
            to: account.email.clone(),
            subject: "Choose a new DicoEvent password".into(),
            greeting: greeting(&account),
            headline: "Someone asked to reset the password of your account.".into(),
            event: None,
            action: Some(Action {
                label: "Choose a new password".into(),
                url: link,
            }),
            ticket: None,
            details: vec![
                format!("Your username is {}.", account.username),
                format!(
                    "The link works once, until {until}. Setting a new password signs you out everywhere."
                ),
            ],
            footer: "Sent by DicoEvent because a password reset was asked for this address. If it was not you, ignore this mail: your password stays as it is.".into(),
        },
    };
    let email = match letter.into_email() {
        Ok(email) => email,
        Err(e) => return Outcome::Failed(e),
    };
    super::letters::send(state, job, &email).await
}
