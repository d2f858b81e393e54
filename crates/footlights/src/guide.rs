// The guide: one chapter per module, each a Markdown file in `docs/`, compiled as doc tests.
#![doc = include_str!("../docs/guide.md")]

pub mod getting_started {
    #![doc = include_str!("../docs/getting-started.md")]
}

pub mod actors_and_state {
    #![doc = include_str!("../docs/actors-and-state.md")]
}

pub mod actions_and_events {
    #![doc = include_str!("../docs/actions-and-events.md")]
}

pub mod storing_more {
    #![doc = include_str!("../docs/storing-more.md")]
}

#[cfg(feature = "db")]
pub mod sql_per_actor {
    #![doc = include_str!("../docs/sql.md")]
}

pub mod queues {
    #![doc = include_str!("../docs/queues.md")]
}

pub mod connections {
    #![doc = include_str!("../docs/connections.md")]
}

pub mod clients {
    #![doc = include_str!("../docs/clients.md")]
}

pub mod lifecycle {
    #![doc = include_str!("../docs/lifecycle.md")]
}

pub mod durability {
    #![doc = include_str!("../docs/durability.md")]
}

pub mod configuration {
    #![doc = include_str!("../docs/configuration.md")]
}

pub mod operating {
    #![doc = include_str!("../docs/operating.md")]
}

pub mod traces {
    #![doc = include_str!("../docs/traces.md")]
}

pub mod several_nodes {
    #![doc = include_str!("../docs/several-nodes.md")]
}

pub mod errors {
    #![doc = include_str!("../docs/errors.md")]
}
