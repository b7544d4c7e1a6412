//! Graphviz output: `Graph::to_dot` and `Delayed::visualize`.
