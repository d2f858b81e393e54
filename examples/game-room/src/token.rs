//! Signed tokens: `{player}.{role}.{signature}`, where the signature is HMAC-SHA256 of
//! `{player}.{role}` under the server's secret, in unpadded URL-safe base64.
//!
//! Whoever holds the secret (the login service of a real game; here the binary, which prints
//! a few tokens at start) can mint tokens; the actors only check them. Checking compares MACs
//! in constant time.
//!
//! ```
//! use game_room::token::{Claims, Role, sign, verify};
//! let token = sign(b"secret", &Claims { player: "ann".into(), role: Role::Player });
//! assert_eq!(verify(b"secret", &token).unwrap().player, "ann");
//! assert!(verify(b"other secret", &token).is_err());
//! ```

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// What a token may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Plays rounds.
    #[default]
    Player,
    /// Plays, and starts or cancels rounds.
    Admin,
    /// Another part of the backend: the game room, when it reports a winner.
    Service,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Player => "player",
            Role::Admin => "admin",
            Role::Service => "service",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        match s {
            "player" => Some(Role::Player),
            "admin" => Some(Role::Admin),
            "service" => Some(Role::Service),
            _ => None,
        }
    }
}

/// What a valid token proves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The player's name: 1 to 32 ASCII letters, digits, `-` or `_`.
    pub player: String,
    /// What the holder may do.
    pub role: Role,
}

/// Why a token was refused. Deliberately vague towards clients: see [`verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidToken;

impl fmt::Display for InvalidToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid token")
    }
}

impl std::error::Error for InvalidToken {}

fn valid_player(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

fn mac(secret: &[u8], payload: &str) -> Hmac<Sha256> {
    // invariant: HMAC takes keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(payload.as_bytes());
    mac
}

/// Mints a token for `claims`.
///
/// # Panics
/// If the player name is not 1 to 32 ASCII letters, digits, `-` or `_` (the format relies
/// on names without a `.`).
pub fn sign(secret: &[u8], claims: &Claims) -> String {
    assert!(valid_player(&claims.player), "invalid player name");
    let payload = format!("{}.{}", claims.player, claims.role.as_str());
    let tag = mac(secret, &payload).finalize().into_bytes();
    format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// Checks a token and returns what it proves.
///
/// # Errors
/// [`InvalidToken`] for anything but a well-formed token signed with `secret`.
pub fn verify(secret: &[u8], token: &str) -> Result<Claims, InvalidToken> {
    let (payload, signature) = token.rsplit_once('.').ok_or(InvalidToken)?;
    let (player, role) = payload.split_once('.').ok_or(InvalidToken)?;
    let role = Role::parse(role).ok_or(InvalidToken)?;
    if !valid_player(player) {
        return Err(InvalidToken);
    }
    let tag = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| InvalidToken)?;
    mac(secret, payload)
        .verify_slice(&tag)
        .map_err(|_| InvalidToken)?;
    Ok(Claims {
        player: player.to_owned(),
        role,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_tampering_is_caught() {
        let claims = Claims {
            player: "ann".into(),
            role: Role::Player,
        };
        let token = sign(b"k", &claims);
        assert_eq!(verify(b"k", &token), Ok(claims));
        let promoted = token.replacen(".player.", ".admin.", 1);
        assert_eq!(verify(b"k", &promoted), Err(InvalidToken));
        for bad in [
            "",
            "ann",
            "ann.player",
            "ann.player.!!",
            "a.b.c.d",
            ".player.x",
        ] {
            assert_eq!(verify(b"k", bad), Err(InvalidToken), "{bad}");
        }
    }
}
