//! The startup phase: refuse a client while this replica cannot serve (so that a driver given
//! several hosts moves on to the next), check the user name, authenticate (`trust` or
//! SCRAM-SHA-256), and report the server parameters clients read.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use barista_runtime::node::Health;
use futures::sink::Sink;
use pgwire::api::auth::driver::AuthDriver;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::{ScramAuth, gen_salted_password};
use pgwire::api::auth::{
    AuthSource, LoginInfo, Password, ServerParameterProvider, StartupHandler, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::{ClientInfo, METADATA_APPLICATION_NAME, METADATA_USER};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::Shared;
use crate::config::PgAuth;

/// PBKDF2 iterations of the SCRAM verifier (PostgreSQL's default).
const SCRAM_ITERATIONS: usize = 4096;

/// The startup handler of one connection.
pub struct Startup {
    shared: Arc<Shared>,
    method: Method,
}

enum Method {
    Trust(AuthDriver<Arc<Parameters>>),
    Scram(SASLAuthStartupHandler<Parameters>),
}

impl Startup {
    /// The handler for the configured method.
    pub fn new(shared: Arc<Shared>) -> Startup {
        let parameters = Arc::new(Parameters { shared: shared.clone() });
        let method = match &shared.settings.auth {
            PgAuth::Trust => Method::Trust(AuthDriver::new(parameters)),
            PgAuth::ScramSha256 { .. } => {
                let mut scram = ScramAuth::new(Arc::new(Secret { shared: shared.clone() }));
                scram.set_iterations(SCRAM_ITERATIONS);
                Method::Scram(SASLAuthStartupHandler::new(parameters).with_scram(scram))
            }
        };
        Startup { shared, method }
    }

    /// Why a new client cannot be served here now, if it cannot.
    fn refusal(&self, user: Option<&str>) -> Option<ErrorInfo> {
        let fatal = |code: &str, message: String| Some(ErrorInfo::new("FATAL".into(), code.into(), message));
        let health = self.shared.service.get().map(|s| s.node().status().health);
        if health != Some(Health::Healthy) {
            let state = health.map_or("starting".to_owned(), |h| format!("{h:?}"));
            return fatal("57P03", format!("this Barista replica cannot serve now ({state}); try another replica"));
        }
        // With a password, a wrong user name fails like a wrong password (see `Secret`).
        match (&self.shared.settings.user, user, &self.method) {
            (Some(allowed), Some(user), Method::Trust(_)) if allowed != user => {
                fatal("28000", format!("user \"{user}\" may not connect to this Barista replica"))
            }
            _ => None,
        }
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let PgWireFrontendMessage::Startup(startup) = &message {
            if let Some(refusal) = self.refusal(startup.parameters.get(METADATA_USER).map(String::as_str)) {
                return Err(PgWireError::UserError(Box::new(refusal)));
            }
        }
        match &self.method {
            Method::Scram(handler) => handler.on_startup(client, message).await,
            Method::Trust(driver) => match message {
                PgWireFrontendMessage::Startup(startup) => {
                    protocol_negotiation(client, &startup).await?;
                    save_startup_parameters_to_metadata(client, &startup);
                    driver.complete_authentication(client, None).await
                }
                _ => Ok(()),
            },
        }
    }
}

/// The password's SCRAM material, for the one configured password.
#[derive(Debug)]
struct Secret {
    shared: Arc<Shared>,
}

#[async_trait]
impl AuthSource for Secret {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let (salt, salted) = self.shared.scram.as_ref().ok_or_else(|| {
            PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".into(),
                "28000".into(),
                "SCRAM is not configured".into(),
            )))
        })?;
        // A wrong user name fails like a wrong password (PostgreSQL does not say which either):
        // its verifier is of a password nobody knows.
        let user = login.user().unwrap_or_default();
        if self.shared.settings.user.as_deref().is_some_and(|allowed| allowed != user) {
            return Ok(Password::new(Some(salt.clone()), scram_secret(&format!("{:x}", rand_u64())).1));
        }
        Ok(Password::new(Some(salt.clone()), salted.clone()))
    }
}

/// The SCRAM salt and salted password for `password`, computed once (4096 PBKDF2 rounds).
pub fn scram_secret(password: &str) -> (Vec<u8>, Vec<u8>) {
    let salt: Vec<u8> = (0..2).flat_map(|_| rand_u64().to_le_bytes()).collect();
    let salted = gen_salted_password(password, &salt, SCRAM_ITERATIONS);
    (salt, salted)
}

/// A random number (std's hasher keys are seeded from the OS).
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(0u8)
}

/// The parameters every client is told at startup: the replica's PostgreSQL version (clients
/// choose their catalog queries by it) and the settings Barista pins on every replica's
/// connections (see `barista_runtime::postgres::PINNED_SETTINGS`), so that a client formats and
/// reads values as the replicas do.
#[derive(Debug)]
pub struct Parameters {
    shared: Arc<Shared>,
}

impl ServerParameterProvider for Parameters {
    fn server_parameters<C>(&self, client: &C) -> Option<HashMap<String, String>>
    where
        C: ClientInfo,
    {
        let version = self.shared.server_version.get().cloned().unwrap_or_else(|| "15.0".into());
        let mut params: HashMap<String, String> = [
            ("server_version", version.as_str()),
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("IntervalStyle", "postgres"),
            ("TimeZone", "UTC"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
            ("default_transaction_read_only", "off"),
            ("in_hot_standby", "off"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (key, name) in [(METADATA_APPLICATION_NAME, "application_name"), (METADATA_USER, "session_authorization")] {
            if let Some(value) = client.metadata().get(key) {
                params.insert(name.to_owned(), value.clone());
            }
        }
        Some(params)
    }
}
