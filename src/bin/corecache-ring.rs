//! `corecache-ring`: places keys on a cluster as libmemcached and twemproxy do, and plans
//! node counts. Everything it does lives in [`corecache::cluster`]; this file only hands
//! over to it.

use std::process::ExitCode;

fn main() -> ExitCode {
    corecache::cluster::cli::main()
}
