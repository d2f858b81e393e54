//! A game room: authentication in the before-connect hook, roles in connection state, an
//! admin-only action, a round timer kept with `ctx.schedule()`, and an actor-to-actor call to
//! a leaderboard.
//!
//! - **Auth**: clients connect with `{ "token": "ann.player.…" }`, a token signed with HMAC-SHA256
//!   ([`token`]). `on_before_connect` checks it and returns its [`Claims`] as the connection's
//!   auth data; a missing or forged token gets `auth.unauthorized` before anything else runs.
//! - **Roles in connection state**: the connect hook seats the player ([`Seat`]) with the role
//!   the token proved.
//! - **Admin-only action**: `startRound` (and `cancelRound`) answer `auth.forbidden` to players.
//! - **Schedule**: a round ends when the alarm set by `ctx.schedule().after(..)` calls
//!   `endRound`; the alarm is stored durably, so it fires even after the actor slept or the
//!   server restarted. Clients cannot call `endRound` themselves.
//! - **Actor to actor**: `endRound` reports the winner to the [`Leaderboard`] actor with
//!   `ctx.client()`, presenting a service token the leaderboard checks in turn.
//!
//! The actors read the signing secret installed once per process with [`install_secret`].
//!
//! ```text
//! cargo run -p game-room -- [--addr 127.0.0.1:6420] [--db game-room.db] [--secret S]
//! ```
//!
//! The binary prints an admin and two player tokens to try it with, for example from the
//! official JavaScript client:
//!
//! ```js
//! const room = client.gameRoom.getOrCreate(["arena"]).connect({ token: adminToken });
//! room.on("roundEnded", (result) => console.log(result));
//! await room.startRound(10_000); // a 10 s round
//! await room.tap();
//! console.log(await client.leaderboard.getOrCreate(["global"]).top(10));
//! ```

pub mod token;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use footlights::ConnRequest;
use footlights::prelude::*;

pub use token::{Claims, Role};

/// The longest round, in milliseconds (ten minutes).
pub const MAX_ROUND_MS: u64 = 10 * 60 * 1000;
/// The key of the one leaderboard every room reports to.
pub const LEADERBOARD_KEY: &str = "global";

static SECRET: OnceLock<Vec<u8>> = OnceLock::new();

/// Installs the secret tokens are signed with, once per process. Returns `false` (and
/// changes nothing) if a secret was installed already.
pub fn install_secret(secret: impl Into<Vec<u8>>) -> bool {
    SECRET.set(secret.into()).is_ok()
}

/// The installed secret. Not installing one is a deployment mistake, so clients see an
/// internal error and the details stay in the server log.
fn secret() -> Result<&'static [u8], ActionError> {
    SECRET
        .get()
        .map(Vec::as_slice)
        .ok_or_else(|| ActionError::internal("game-room: no secret installed"))
}

/// Checks a token from connection params.
fn authenticate(token: Option<&str>) -> Result<Claims, ActionError> {
    let token = token.ok_or_else(|| ActionError::unauthorized("a token is required"))?;
    token::verify(secret()?, token).map_err(|_| ActionError::unauthorized("invalid token"))
}

/// What clients send when they connect: `{ "token": "…" }`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct JoinParams {
    /// A token from [`token::sign`].
    #[serde(default)]
    pub token: Option<String>,
}

/// A connection's state: who sits there, in which role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    /// The player's name, from the token.
    pub player: String,
    /// The player's role, from the token.
    pub role: Role,
}

/// The round under way.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Round {
    number: u64,
    /// Taps per player.
    scores: BTreeMap<String, u32>,
    /// The id of the alarm that ends it.
    alarm: String,
}

/// Sent when a round starts (wire name `roundStarted`; fields in camelCase for JavaScript).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Event)]
#[serde(rename_all = "camelCase")]
pub struct RoundStarted {
    /// The round's number, from 1.
    pub round: u64,
    /// How long it lasts.
    pub duration_ms: u64,
}

/// Sent when a round ends (wire name `roundEnded`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Event)]
pub struct RoundEnded {
    /// The round's number.
    pub round: u64,
    /// Who tapped most (ties go to the first name in alphabetical order); `None` if nobody
    /// tapped or the round was cancelled.
    pub winner: Option<String>,
    /// Taps per player.
    pub scores: BTreeMap<String, u32>,
}

/// Where a room stands (the answer of `roomStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomStatus {
    /// The last round started.
    pub round: u64,
    /// Whether it is still running.
    pub running: bool,
    /// The winners of past rounds, oldest first.
    pub winners: Vec<Option<String>>,
}

/// A game room (registered as `gameRoom`): rounds in which players tap as fast as they can.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct GameRoom {
    /// The last round number handed out.
    round: u64,
    running: Option<Round>,
    /// The winners of finished rounds, oldest first.
    winners: Vec<Option<String>>,
}

/// The seat of the calling connection.
fn seat(ctx: &Ctx<GameRoom>) -> Result<Seat, ActionError> {
    ctx.conn()
        .map(|c| c.state().clone())
        .ok_or_else(|| ActionError::forbidden("call this over a connection"))
}

fn require_admin(ctx: &Ctx<GameRoom>) -> Result<(), ActionError> {
    match seat(ctx)?.role {
        Role::Admin => Ok(()),
        _ => Err(ActionError::forbidden("only admins may do this")),
    }
}

// `Option<JoinParams>`: a client that sends no params at all gets `unauthorized`, not a
// complaint about the shape of its params.
#[footlights::actor(conn = Conns<Option<JoinParams>, Seat, Claims>)]
impl GameRoom {
    /// Authentication: the token must be valid; its claims become the connection's auth data.
    async fn on_before_connect(
        &mut self,
        _ctx: &Ctx<Self>,
        params: &Option<JoinParams>,
        _request: &ConnRequest,
    ) -> Result<Claims, ActionError> {
        authenticate(params.as_ref().and_then(|p| p.token.as_deref()))
    }

    /// Seats the player with the role the token proved.
    async fn on_connect(&mut self, _ctx: &Ctx<Self>, conn: &Conn<Self>) -> Result<(), ActionError> {
        let claims = conn.auth();
        *conn.state() = Seat {
            player: claims.player.clone(),
            role: claims.role,
        };
        Ok(())
    }

    /// Starts a round of `duration_ms` milliseconds; admins only. Returns its number (wire
    /// name `startRound`).
    #[action]
    pub fn start_round(&mut self, ctx: &Ctx<Self>, duration_ms: u64) -> Result<u64, ActionError> {
        require_admin(ctx)?;
        if self.running.is_some() {
            return Err(ActionError::user("round_running", "a round is under way"));
        }
        if !(1..=MAX_ROUND_MS).contains(&duration_ms) {
            return Err(ActionError::user(
                "invalid_duration",
                format!("a round lasts 1 to {MAX_ROUND_MS} ms"),
            ));
        }
        let number = self.round + 1;
        // Stored with this action's state change: the alarm is as durable as the round.
        let alarm = ctx.schedule().after(
            Duration::from_millis(duration_ms),
            game_room_actions::EndRound { round: number },
        )?;
        self.round = number;
        self.running = Some(Round {
            number,
            scores: BTreeMap::new(),
            alarm,
        });
        ctx.broadcast(RoundStarted {
            round: number,
            duration_ms,
        });
        Ok(number)
    }

    /// Cancels the running round, if any; admins only. Returns whether one was running (wire
    /// name `cancelRound`).
    #[action]
    pub fn cancel_round(&mut self, ctx: &Ctx<Self>) -> Result<bool, ActionError> {
        require_admin(ctx)?;
        let Some(round) = self.running.take() else {
            return Ok(false);
        };
        ctx.schedule().cancel(&round.alarm);
        self.winners.push(None);
        ctx.broadcast(RoundEnded {
            round: round.number,
            winner: None,
            scores: round.scores,
        });
        Ok(true)
    }

    /// One tap in the running round. Returns the caller's taps so far (wire name `tap`).
    #[action]
    pub fn tap(&mut self, ctx: &Ctx<Self>) -> Result<u32, ActionError> {
        let player = seat(ctx)?.player;
        let round = self
            .running
            .as_mut()
            .ok_or_else(|| ActionError::user("no_round", "no round is running"))?;
        let score = round.scores.entry(player).or_default();
        *score += 1;
        Ok(*score)
    }

    /// Ends round `round`: called by the alarm `start_round` set, never by clients. Reports
    /// the winner to the leaderboard (wire name `endRound`).
    ///
    /// Awaiting another actor keeps this one busy meanwhile; that is fine here because the
    /// leaderboard never calls back. Two actors awaiting each other would wait forever.
    #[action]
    pub async fn end_round(
        &mut self,
        ctx: &Ctx<Self>,
        round: u64,
    ) -> Result<Option<String>, ActionError> {
        // Scheduled calls are the only ones without a connection.
        if ctx.conn().is_some() {
            return Err(ActionError::forbidden("rounds end on their timer"));
        }
        let Some(current) = self.running.take_if(|r| r.number == round) else {
            return Ok(None); // a stale alarm: that round was cancelled
        };
        let best = current.scores.values().copied().max().unwrap_or(0);
        let winner = current
            .scores
            .iter()
            .find(|(_, taps)| **taps == best && best > 0)
            .map(|(player, _)| player.clone());
        self.winners.push(winner.clone());
        ctx.broadcast(RoundEnded {
            round,
            winner: winner.clone(),
            scores: current.scores,
        });
        if let Some(player) = &winner {
            let service = token::sign(
                secret()?,
                &Claims {
                    player: "game-room".into(),
                    role: Role::Service,
                },
            );
            ctx.client()
                .get_or_create::<Leaderboard>([LEADERBOARD_KEY])
                .with_params(&LeaderboardParams {
                    token: Some(service),
                })
                .record_win(player.clone())
                .await?;
        }
        Ok(winner)
    }

    /// Where the room stands (wire name `roomStatus`). Not `status`: connections have a
    /// `status()` method of their own, which would hide the generated one.
    #[action]
    pub fn room_status(&self) -> RoomStatus {
        RoomStatus {
            round: self.round,
            running: self.running.is_some(),
            winners: self.winners.clone(),
        }
    }

    /// The caller's seat (wire name `whoami`).
    #[action]
    pub fn whoami(&self, ctx: &Ctx<Self>) -> Result<Seat, ActionError> {
        seat(ctx)
    }
}

/// What callers of the leaderboard send: nothing to read it, a service token to write it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct LeaderboardParams {
    /// A token with [`Role::Service`], needed for `recordWin`.
    #[serde(default)]
    pub token: Option<String>,
}

/// One line of the leaderboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    /// The player.
    pub player: String,
    /// Rounds won.
    pub wins: u32,
}

/// Wins per player across every room (registered as `leaderboard`, one actor under the key
/// [`LEADERBOARD_KEY`]). Anyone may read it; only backend services may write it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Leaderboard {
    wins: BTreeMap<String, u32>,
}

#[footlights::actor(conn = Conns<Option<LeaderboardParams>, (), Option<Claims>>)]
impl Leaderboard {
    /// Readers send no token; a token that is sent must be valid.
    async fn on_before_connect(
        &mut self,
        _ctx: &Ctx<Self>,
        params: &Option<LeaderboardParams>,
        _request: &ConnRequest,
    ) -> Result<Option<Claims>, ActionError> {
        match params.as_ref().and_then(|p| p.token.as_deref()) {
            Some(token) => authenticate(Some(token)).map(Some),
            None => Ok(None),
        }
    }

    /// Counts one more win for `player`; backend services only. Returns their wins (wire
    /// name `recordWin`).
    #[action]
    pub fn record_win(&mut self, ctx: &Ctx<Self>, player: String) -> Result<u32, ActionError> {
        let service = ctx
            .conn()
            .is_some_and(|c| matches!(c.auth(), Some(claims) if claims.role == Role::Service));
        if !service {
            return Err(ActionError::forbidden("only game services record wins"));
        }
        let wins = self.wins.entry(player).or_default();
        *wins += 1;
        Ok(*wins)
    }

    /// The `n` players with the most wins, best first (wire name `top`).
    #[action]
    pub fn top(&self, n: usize) -> Vec<Standing> {
        let mut standings: Vec<Standing> = self
            .wins
            .iter()
            .map(|(player, wins)| Standing {
                player: player.clone(),
                wins: *wins,
            })
            .collect();
        standings.sort_by(|a, b| b.wins.cmp(&a.wins).then_with(|| a.player.cmp(&b.player)));
        standings.truncate(n);
        standings
    }
}
