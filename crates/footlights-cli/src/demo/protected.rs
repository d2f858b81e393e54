//! `protectedActor`: the RivetKit benchmark peers' protected actor, with the same behaviour.

use footlights::prelude::*;
use footlights::{ConnRequest, Conns};

/// The token every client must present.
pub const TOKEN: &str = "secret";

/// Connection params: `{ token: "secret", user?: string }`.
#[derive(Debug, Default, Deserialize)]
pub struct TokenParams {
    token: Option<String>,
    user: Option<String>,
}

/// Per-connection state: the user named in the params (`"u"` if none).
#[derive(Debug, Default)]
pub struct Visitor {
    user: String,
}

/// `whoami`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Visit {
    /// The user from the connection params.
    pub user: String,
    /// `whoami` calls so far, this one included.
    pub hits: u64,
}

/// Counts `whoami` calls.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ProtectedActor {
    hits: u64,
}

#[footlights::actor(name = "protectedActor", conn = Conns<Option<TokenParams>, Visitor>)]
impl ProtectedActor {
    /// Refuses everyone whose params lack `token: "secret"`, with `auth.forbidden`. (The
    /// RivetKit peer throws a `UserError` with code `forbidden`, so its group is `user`; the code
    /// clients match on is the same.)
    async fn on_before_connect(
        &mut self,
        _ctx: &Ctx<Self>,
        params: &Option<TokenParams>,
        _request: &ConnRequest,
    ) -> Result<(), ActionError> {
        match params.as_ref().and_then(|p| p.token.as_deref()) {
            Some(TOKEN) => Ok(()),
            _ => Err(ActionError::forbidden("Forbidden: bad token")),
        }
    }

    async fn create_conn_state(
        &mut self,
        _ctx: &Ctx<Self>,
        params: &Option<TokenParams>,
        _request: &ConnRequest,
    ) -> Result<Visitor, ActionError> {
        let user = params.as_ref().and_then(|p| p.user.clone());
        Ok(Visitor {
            user: user.unwrap_or_else(|| "u".to_owned()),
        })
    }

    /// Counts the call and answers the caller's user and the count.
    #[action]
    pub fn whoami(&mut self, ctx: &Ctx<Self>) -> Visit {
        self.hits += 1;
        Visit {
            user: ctx
                .conn()
                .map(|c| c.state().user.clone())
                .unwrap_or_default(),
            hits: self.hits,
        }
    }
}
