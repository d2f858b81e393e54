//! `secureRoom`: only clients with a valid `authToken` get in; some actions need the admin role.

use footlights::prelude::*;
use footlights::{ConnRequest, Conns};

/// The demo's users: `(authToken, user name, role)`. A real application would check a signed
/// token or ask an identity service in [`on_before_connect`](footlights::Actor::on_before_connect).
pub const USERS: [(&str, &str, Role); 2] = [
    ("user-token", "ursula", Role::User),
    ("admin-token", "ada", Role::Admin),
];

/// Connection params: `{ authToken: string }`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthParams {
    auth_token: Option<String>,
}

/// What a member may do.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May read and call ordinary actions.
    #[default]
    User,
    /// May also call admin actions.
    Admin,
}

/// Who a connection belongs to: decided once, before the connection is accepted.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Identity {
    /// The user's name.
    pub user: String,
    /// The user's role.
    pub role: Role,
}

/// Per-connection state: how many actions this connection has called.
#[derive(Debug, Default)]
pub struct Session {
    calls: u64,
}

/// `whoami`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WhoAmI {
    /// The user's name.
    pub user: String,
    /// The user's role.
    pub role: Role,
    /// Actions this connection has called, this one included.
    pub calls: u64,
}

/// A room whose members must present a token. Its state counts the admin actions run.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SecureRoom {
    admin_actions: u64,
}

#[footlights::actor(name = "secureRoom", conn = Conns<Option<AuthParams>, Session, Identity>)]
impl SecureRoom {
    /// Refuses connections and stateless calls without a known token (`auth.forbidden`).
    async fn on_before_connect(
        &mut self,
        _ctx: &Ctx<Self>,
        params: &Option<AuthParams>,
        _request: &ConnRequest,
    ) -> Result<Identity, ActionError> {
        let token = params.as_ref().and_then(|p| p.auth_token.as_deref());
        USERS
            .iter()
            .find(|(known, _, _)| Some(*known) == token)
            .map(|(_, user, role)| Identity {
                user: (*user).to_owned(),
                role: *role,
            })
            .ok_or_else(|| ActionError::forbidden("a valid authToken is required"))
    }

    /// Only admins may listen to `adminNews`; a member who tries is refused with
    /// `auth.forbidden` and disconnected (1011), as RivetKit does.
    fn can_subscribe(
        &self,
        _ctx: &Ctx<Self>,
        conn: &Conn<Self>,
        event: &str,
    ) -> Result<(), ActionError> {
        if event == "adminNews" && conn.auth().role != Role::Admin {
            return Err(ActionError::forbidden("adminNews is for admins"));
        }
        Ok(())
    }

    /// Broadcasts `text` as `news` to everyone and as `adminNews` to the admins listening.
    #[action]
    pub fn announce(&self, ctx: &Ctx<Self>, text: String) {
        ctx.broadcast_raw("news", vec![text.clone().into()]);
        ctx.broadcast_raw("adminNews", vec![text.into()]);
    }

    /// The caller's name and role.
    #[action]
    pub fn whoami(&self, ctx: &Ctx<Self>) -> Result<WhoAmI, ActionError> {
        let conn = caller(ctx)?;
        let calls = {
            let mut session = conn.state();
            session.calls += 1;
            session.calls
        };
        let Identity { user, role } = conn.auth().clone();
        Ok(WhoAmI { user, role, calls })
    }

    /// For admins only; anyone else gets `auth.forbidden`. Returns how many admin actions
    /// the room has run.
    #[action]
    pub fn admin_only(&mut self, ctx: &Ctx<Self>) -> Result<u64, ActionError> {
        if caller(ctx)?.auth().role != Role::Admin {
            return Err(ActionError::forbidden("admins only"));
        }
        self.admin_actions += 1;
        Ok(self.admin_actions)
    }
}

/// The calling connection; actions called without one (scheduled calls) are refused.
fn caller(ctx: &Ctx<SecureRoom>) -> Result<&Conn<SecureRoom>, ActionError> {
    ctx.conn()
        .ok_or_else(|| ActionError::forbidden("this action needs a caller"))
}
