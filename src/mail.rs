//! Sending mail: SMTP when `MAIL_HOST` is set, else `.eml` files under
//! `<data dir>/outbox/` (and a log line), so nothing is lost on a laptop.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{Config, MailTls};

/// An e-mail to send: text and HTML versions of one message, and the
/// images the HTML shows inline (`<img src="cid:…">`).
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub images: Vec<InlineImage>,
}

/// A PNG the HTML part refers to as `cid:<content_id>`.
pub struct InlineImage {
    pub content_id: String,
    /// The file name mail clients show when they list it.
    pub file_name: String,
    pub png: Vec<u8>,
}

impl Email {
    /// The MIME body: text and HTML as alternatives; with images, the HTML
    /// and its images travel together in a multipart/related, so that a
    /// text-only reader still gets the whole message without them.
    fn body(&self) -> anyhow::Result<MultiPart> {
        if self.images.is_empty() {
            return Ok(MultiPart::alternative_plain_html(
                self.text.clone(),
                self.html.clone(),
            ));
        }
        let png = ContentType::parse("image/png").context("the image/png content type")?;
        let mut related = MultiPart::related().singlepart(SinglePart::html(self.html.clone()));
        for image in &self.images {
            related = related.singlepart(
                Attachment::new_inline_with_name(image.content_id.clone(), image.file_name.clone())
                    .body(image.png.clone(), png.clone()),
            );
        }
        Ok(MultiPart::alternative()
            .singlepart(SinglePart::plain(self.text.clone()))
            .multipart(related))
    }
}

#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Transport>,
    from: Mailbox,
}

enum Transport {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        description: String,
    },
    Files {
        dir: PathBuf,
    },
}

impl Mailer {
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        let from: Mailbox = config.mail_from.parse().with_context(|| {
            format!("MAIL_FROM: {:?} is not an e-mail address", config.mail_from)
        })?;
        let inner = match &config.smtp {
            Some(smtp) => {
                let mut builder = match smtp.tls {
                    MailTls::StartTls => {
                        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
                            .with_context(|| format!("MAIL_HOST: cannot use {:?}", smtp.host))?
                    }
                    MailTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)
                        .with_context(|| format!("MAIL_HOST: cannot use {:?}", smtp.host))?,
                    MailTls::None => {
                        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
                    }
                }
                .port(smtp.port)
                .timeout(Some(Duration::from_secs(15)));
                if let (Some(user), Some(password)) = (&smtp.user, &smtp.password) {
                    builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
                }
                Transport::Smtp {
                    transport: builder.build(),
                    description: format!("SMTP {}:{} ({:?})", smtp.host, smtp.port, smtp.tls),
                }
            }
            None => {
                let dir = config.data_dir.join("outbox");
                std::fs::create_dir_all(&dir).with_context(|| {
                    format!("cannot create the mail directory {}", dir.display())
                })?;
                Transport::Files { dir }
            }
        };
        Ok(Mailer {
            inner: Arc::new(inner),
            from,
        })
    }

    pub fn describe(&self) -> String {
        match &*self.inner {
            Transport::Smtp { description, .. } => description.clone(),
            Transport::Files { dir } => format!("files in {}", dir.display()),
        }
    }

    /// Sends one message. `id` names the file when mail goes to files.
    pub async fn send(&self, id: &str, email: &Email) -> anyhow::Result<()> {
        let to: Mailbox = email
            .to
            .parse()
            .with_context(|| format!("recipient {:?} is not an e-mail address", email.to))?;
        // A Message-ID of our own (spam filters mark messages without one
        // down), the same for every retry of one job so that a message
        // delivered twice is recognised as one. `Date` is added by lettre.
        let domain = self.from.email.domain().to_owned();
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&email.subject)
            .message_id(Some(format!("<{id}@{domain}>")))
            .multipart(email.body()?)
            .context("building the message")?;
        match &*self.inner {
            Transport::Smtp { transport, .. } => {
                transport
                    .send(message)
                    .await
                    .context("SMTP delivery failed")?;
            }
            Transport::Files { dir } => {
                let path = dir.join(format!(
                    "{}-{id}.eml",
                    chrono::Utc::now().format("%Y%m%dT%H%M%S")
                ));
                tokio::fs::write(&path, message.formatted())
                    .await
                    .with_context(|| format!("cannot write {}", path.display()))?;
                tracing::info!("Mail to {} written to {}", email.to, path.display());
            }
        }
        Ok(())
    }

    /// Reachability, for `/readyz` and `check`.
    pub async fn ping(&self) -> Result<(), String> {
        match &*self.inner {
            Transport::Smtp { transport, .. } => {
                match tokio::time::timeout(Duration::from_secs(3), transport.test_connection())
                    .await
                {
                    Ok(Ok(true)) => Ok(()),
                    Ok(Ok(false)) => Err("the server refused the connection test".into()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("no answer within 3 s".into()),
                }
            }
            Transport::Files { dir } => {
                if dir.is_dir() {
                    Ok(())
                } else {
                    Err(format!("{} is missing", dir.display()))
                }
            }
        }
    }

    pub fn is_smtp(&self) -> bool {
        matches!(&*self.inner, Transport::Smtp { .. })
    }
}

/// Escapes text for HTML bodies.
pub fn escape_html(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
