//! A node of a cluster as clients configure it: the host string exactly as written,
//! the port, a weight, and (twemproxy only) an alias.
//!
//! The host is kept as text and never resolved, because the clients hash the text:
//! `localhost` and `127.0.0.1` are different nodes to the continuum.

use std::fmt;
use std::str::FromStr;

/// memcached's port, which libmemcached and twemproxy leave out of the point strings.
pub const DEFAULT_PORT: u16 = 11211;

/// One node: where it listens and how much of the ring it should get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The host name or address, as the client configuration spells it.
    pub host: String,
    /// The TCP port.
    pub port: u16,
    /// The relative weight (1 unless given); only weighted continuums use it.
    pub weight: u32,
    /// twemproxy's optional server name (`host:port:weight name`), which replaces the
    /// address in the point strings so that a node can move without moving its keys.
    pub alias: Option<String>,
}

/// Why a node specification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// The text is empty or has more than three `:`-separated parts.
    #[error("bad node {0:?}: want host[:port[:weight]] [alias]")]
    Shape(String),
    /// The port is not a number in 1..=65535.
    #[error("bad port in node {0:?}")]
    Port(String),
    /// The weight is not a whole number of at least 1 (twemproxy refuses 0, and a
    /// weight of 0 would give a node no points at all).
    #[error("bad weight in node {0:?}: want a whole number of at least 1")]
    Weight(String),
}

impl Node {
    /// A node at `host:port` with weight 1 and no alias.
    pub fn new(host: impl Into<String>, port: u16) -> Node {
        Node {
            host: host.into(),
            port,
            weight: 1,
            alias: None,
        }
    }

    /// The same node with another weight.
    pub fn with_weight(self, weight: u32) -> Node {
        Node { weight, ..self }
    }

    /// `host:port`, the address clients connect to and the name `locate` prints.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The host as libmemcached and twemproxy name it in point strings: the port is
    /// left out when it is 11211, for compatibility with old libmemcached.
    pub fn libmemcached_name(&self) -> String {
        if self.port == DEFAULT_PORT {
            self.host.clone()
        } else {
            self.address()
        }
    }
}

impl FromStr for Node {
    type Err = NodeError;

    /// Parses `host[:port[:weight]] [alias]`, as `--nodes` takes it and as a twemproxy
    /// `servers:` line writes it. IPv6 addresses are not accepted: their colons would be
    /// read as separators.
    fn from_str(text: &str) -> Result<Node, NodeError> {
        let mut words = text.split_whitespace();
        let spec = words.next().ok_or_else(|| NodeError::Shape(text.into()))?;
        let alias = words.next().map(str::to_owned);
        if words.next().is_some() {
            return Err(NodeError::Shape(text.into()));
        }
        let mut parts = spec.split(':');
        let host = parts.next().filter(|h| !h.is_empty());
        let host = host.ok_or_else(|| NodeError::Shape(text.into()))?;
        let port = parts
            .next()
            .map_or(Ok(DEFAULT_PORT), |p| parse_port(p, text))?;
        let weight = parts.next().map_or(Ok(1), |w| parse_weight(w, text))?;
        if parts.next().is_some() {
            return Err(NodeError::Shape(text.into()));
        }
        let node = Node::new(host, port).with_weight(weight);
        Ok(Node { alias, ..node })
    }
}

fn parse_port(port: &str, text: &str) -> Result<u16, NodeError> {
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(NodeError::Port(text.into())),
    }
}

fn parse_weight(weight: &str, text: &str) -> Result<u32, NodeError> {
    match weight.parse::<u32>() {
        Ok(weight) if weight > 0 => Ok(weight),
        _ => Err(NodeError::Weight(text.into())),
    }
}

impl fmt::Display for Node {
    /// The form `FromStr` reads: the weight only when it is not 1, the alias after a
    /// space.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)?;
        if self.weight != 1 {
            write!(f, ":{}", self.weight)?;
        }
        if let Some(alias) = &self.alias {
            write!(f, " {alias}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_shape() {
        let node: Node = "10.0.0.1".parse().unwrap();
        assert_eq!(node, Node::new("10.0.0.1", 11211));
        let node: Node = "cache-a:22141:3 alias-a".parse().unwrap();
        assert_eq!(node.address(), "cache-a:22141");
        assert_eq!(node.weight, 3);
        assert_eq!(node.alias.as_deref(), Some("alias-a"));
        assert_eq!(node.to_string(), "cache-a:22141:3 alias-a");
    }

    #[test]
    fn refuses_bad_parts() {
        assert!(matches!("".parse::<Node>(), Err(NodeError::Shape(_))));
        assert!(matches!(":1".parse::<Node>(), Err(NodeError::Shape(_))));
        assert!(matches!(
            "h:1:1:1".parse::<Node>(),
            Err(NodeError::Shape(_))
        ));
        assert!(matches!("h:0".parse::<Node>(), Err(NodeError::Port(_))));
        assert!(matches!("h:x".parse::<Node>(), Err(NodeError::Port(_))));
        assert!(matches!("h:1:0".parse::<Node>(), Err(NodeError::Weight(_))));
        assert!(matches!(
            "h:1 a b".parse::<Node>(),
            Err(NodeError::Shape(_))
        ));
    }

    #[test]
    fn port_11211_is_left_out_of_point_names() {
        assert_eq!(Node::new("10.0.1.1", 11211).libmemcached_name(), "10.0.1.1");
        assert_eq!(
            Node::new("127.0.0.1", 22141).libmemcached_name(),
            "127.0.0.1:22141"
        );
    }
}
