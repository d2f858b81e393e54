//! The help texts: plain words, since the doc comments of the options are the help text.

use tokio::process::Command;

use crate::serve::LIMIT;

#[tokio::test]
async fn help_texts_are_plain_words() {
    for (command, says) in [
        ("serve", "Serves the built-in demo actors"),
        ("new", "Writes a new crate to start from"),
        ("actors", "Lists, reads, calls and deletes the actors"),
        ("actors list", "Lists actors, one per line"),
        (
            "actors call",
            "Calls an action and prints its output as JSON",
        ),
    ] {
        let run = Command::new(env!("CARGO_BIN_EXE_footlights"))
            .args(command.split(' '))
            .arg("--help")
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(LIMIT, run)
            .await
            .expect("help in time")
            .unwrap();
        assert!(output.status.success());
        let help = String::from_utf8(output.stdout).unwrap();
        assert!(help.contains(says), "{help}");
        // Doc comments are the help text: no rustdoc links or code spans may show.
        for markup in ["`", "](", "[crate"] {
            assert!(
                !help.contains(markup),
                "{command} --help shows {markup:?}:\n{help}"
            );
        }
    }
}
