//! Browser sessions of the devices page: opened when a login completes, looked up by their
//! cookie (stored only as a hash), ended by logout, and the per-session anti-forgery value of
//! the page's forms.

use super::{Sso, SsoError, random_token, value_hash};
use crate::secret::Secret;
use crate::store::{User, WebSession, hex};

impl Sso {
    pub(super) async fn open_web_session(
        &self,
        user_id: &str,
        expires_at: i64,
    ) -> Result<Secret, SsoError> {
        let cookie = random_token()?;
        self.store
            .insert_web_session(&WebSession {
                id_hash: value_hash(&cookie),
                user_id: user_id.to_owned(),
                created_at: self.now(),
                expires_at,
            })
            .await?;
        Ok(Secret::new(cookie))
    }

    /// The user behind a browser session cookie, if the session is live and the user enabled.
    pub async fn session_user(&self, cookie: &str) -> Result<Option<User>, SsoError> {
        let Some(s) = self
            .store
            .get_web_session(&value_hash(cookie), self.now())
            .await?
        else {
            return Ok(None);
        };
        Ok(self
            .store
            .get_user(&s.user_id)
            .await?
            .filter(|u| !u.disabled))
    }

    /// Ends a browser session.
    pub async fn logout(&self, cookie: &str) -> Result<(), SsoError> {
        Ok(self.store.delete_web_session(&value_hash(cookie)).await?)
    }

    /// A per-session anti-forgery value for the devices page's forms.
    pub async fn csrf_token(&self, session_cookie: &str) -> Result<String, SsoError> {
        let keys = self.keys().await?;
        let mut input = b"csrf:".to_vec();
        input.extend_from_slice(session_cookie.as_bytes());
        Ok(hex(&blake3::keyed_hash(&keys.code, &input).as_bytes()[..16]))
    }
}
