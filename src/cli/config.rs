//! The optional configuration file, `librarycache.toml` (or `--config FILE`), layered under the
//! command line. Its keys are the commands' flags without the dashes (`body-limit = 1000`,
//! `trace = true`), so nothing here lists settings: a key is looked up among the flags clap
//! knows, and its value is handed to that flag's own parser. Precedence: flags, then
//! environment variables, then this file, then the defaults. A key no command has, a value that
//! is not a string, number or boolean, or one the flag's parser refuses is an error naming the
//! file and the key.

use crate::cli::args::Cli;
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The name looked for in the working directory when no `--config` is given.
pub const DEFAULT_FILE: &str = "librarycache.toml";

/// Why the command line and the configuration file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The command line itself (clap prints it, with usage, and exits).
    #[error("{0}")]
    CommandLine(clap::Error),
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{path}: `{key}` is not a setting (the settings are the flags of `librarycache --help` and its commands, without the dashes)")]
    UnknownKey { path: String, key: String },
    #[error("{path}: `{key}` {expects}")]
    WrongType {
        path: String,
        key: String,
        expects: &'static str,
    },
}

/// A configuration file, read.
#[derive(Debug)]
pub struct ConfigFile {
    path: String,
    table: toml::Table,
}

/// Parses the command line `args` (the program name first) with the configuration file's
/// settings under it.
pub fn parse(args: Vec<OsString>) -> Result<Cli, ConfigError> {
    let matches = Cli::command()
        .try_get_matches_from(&args)
        .map_err(ConfigError::CommandLine)?;
    let cli = Cli::from_arg_matches(&matches).map_err(ConfigError::CommandLine)?;
    match load(cli.config.as_deref())? {
        Some(file) => file.under(args),
        None => Ok(cli),
    }
}

/// A clap error's first line, without its `error: `.
fn first_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

/// Reads `explicit`, or `librarycache.toml` in the working directory if it exists (none
/// otherwise). A file named explicitly must exist.
pub fn load(explicit: Option<&Path>) -> Result<Option<ConfigFile>, ConfigError> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None if Path::new(DEFAULT_FILE).is_file() => PathBuf::from(DEFAULT_FILE),
        None => return Ok(None),
    };
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    ConfigFile::parse(&shown, &text).map(Some)
}

impl ConfigFile {
    /// Parses the TOML text of the file `path` (its keys are checked against the flags later).
    pub fn parse(path: &str, text: &str) -> Result<ConfigFile, ConfigError> {
        let table = text.parse::<toml::Table>().map_err(|e| ConfigError::Invalid {
            path: path.to_string(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        Ok(ConfigFile {
            path: path.to_string(),
            table,
        })
    }

    /// Parses the command line `args` (the program name first) with this file's settings under
    /// it.
    pub fn under(&self, args: Vec<OsString>) -> Result<Cli, ConfigError> {
        let command = Cli::command();
        let matches = command
            .clone()
            .try_get_matches_from(&args)
            .map_err(ConfigError::CommandLine)?;
        let extra = match matches.subcommand() {
            Some((name, sub)) => self.arguments(&command, name, sub)?,
            None => Vec::new(),
        };
        // The file's settings go before a `--` that ends the options, if there is one.
        let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
        let layered: Vec<OsString> = args[..at]
            .iter()
            .cloned()
            .chain(extra)
            .chain(args[at..].iter().cloned())
            .collect();
        let invalid = |e: clap::Error| ConfigError::Invalid {
            path: self.path.clone(),
            message: first_line(&e),
        };
        let matches = command.try_get_matches_from(layered).map_err(invalid)?;
        Cli::from_arg_matches(&matches).map_err(invalid)
    }

    /// The arguments (`--key=value`, or `--key` for a switch set to true) that give the
    /// subcommand `name` of `cli`, as matched in `sub`, each of the file's settings that it has
    /// and that neither a flag nor an environment variable gave. Every key of the file must be
    /// a flag of some command, and every value a string, number or boolean.
    fn arguments(&self, cli: &clap::Command, name: &str, sub: &ArgMatches) -> Result<Vec<OsString>, ConfigError> {
        let known = every_flag(cli);
        if let Some(key) = self.table.keys().find(|k| !known.contains(k.as_str())) {
            return Err(ConfigError::UnknownKey {
                path: self.path.clone(),
                key: key.clone(),
            });
        }
        let Some(command) = cli.find_subcommand(name) else {
            return Ok(Vec::new());
        };
        let mut extra = Vec::new();
        for arg in command.get_arguments() {
            let (Some(long), id) = (arg.get_long(), arg.get_id().as_str()) else {
                continue;
            };
            let Some(value) = self.table.get(long) else {
                continue;
            };
            if !matches!(sub.value_source(id), None | Some(ValueSource::DefaultValue)) {
                continue;
            }
            let wrong = |expects| ConfigError::WrongType {
                path: self.path.clone(),
                key: long.to_string(),
                expects,
            };
            if matches!(arg.get_action(), ArgAction::SetTrue) {
                match value {
                    toml::Value::Boolean(true) => extra.push(format!("--{long}").into()),
                    toml::Value::Boolean(false) => {}
                    _ => return Err(wrong("is a switch: true or false")),
                }
                continue;
            }
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => return Err(wrong("takes a string, a number or a boolean")),
            };
            extra.push(format!("--{long}={text}").into());
        }
        Ok(extra)
    }
}

/// The long flags of every command (without `--config`, which a file cannot set).
fn every_flag(cli: &clap::Command) -> BTreeSet<&str> {
    cli.get_subcommands()
        .flat_map(|c| c.get_arguments())
        .chain(cli.get_arguments())
        .filter_map(|a| a.get_long())
        .filter(|l| *l != "config")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(file: &str, args: &[&str]) -> Result<Cli, ConfigError> {
        let argv = std::iter::once("librarycache")
            .chain(args.iter().copied())
            .map(Into::into)
            .collect();
        ConfigFile::parse("c.toml", file)?.under(argv)
    }

    /// The error for a file the serve command must refuse.
    fn refusal(file: &str) -> String {
        match parse_with(file, &["serve"]) {
            Ok(_) => panic!("{file:?} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn settings_fill_what_the_command_line_does_not_and_bad_keys_are_named() {
        let cli = parse_with(
            "addr = \"127.0.0.1:9000\"\nbody-limit = 1000\ntrace = true\nplex-like-stars = 3\nallow-origin = \"https://app.example\"\n",
            &["serve", "--body-limit", "5"],
        )
        .expect("parses");
        let crate::cli::args::Command::Serve(serve) = cli.command else {
            panic!("serve")
        };
        assert_eq!(serve.addr, "127.0.0.1:9000".parse().expect("addr"));
        assert_eq!(serve.body_limit, 5, "the flag wins over the file");
        assert!(serve.trace);
        assert_eq!(serve.sources.plex.plex_like_stars, 3.0);
        assert_eq!(serve.allow_origin.as_deref(), Some("https://app.example"));

        // A setting of another command is no error for this one.
        assert!(parse_with("addr = \"127.0.0.1:9000\"\n", &["stats", "--user", "u"]).is_ok());

        let e = refusal("adress = \"x\"");
        assert!(e.starts_with("c.toml: ") && e.contains("`adress`"), "{e}");
        let e = refusal("body-limit = \"big\"");
        assert!(e.starts_with("c.toml: ") && e.contains("--body-limit"), "{e}");
        let e = refusal("trace = \"yes\"");
        assert!(e.contains("`trace` is a switch"), "{e}");
        let e = refusal("expose = [\"a\"]");
        assert!(e.contains("`expose` takes a string"), "{e}");
        let e = refusal("config = \"other.toml\"");
        assert!(e.contains("`config` is not a setting"), "{e}");
    }
}
