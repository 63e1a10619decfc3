//! What the integration tests share: a private results directory and fixture cache, and run
//! options that verify the dataset through the server's API.

use hsbench::fixture::FixtureStore;
use hsbench::run::RunOptions;

/// Private directories for one test's runs; removed when dropped.
pub struct Sandbox {
    _results: tempfile::TempDir,
    _fixtures: tempfile::TempDir,
    pub opts: RunOptions,
}

impl Sandbox {
    pub fn new() -> Self {
        let results = tempfile::tempdir().unwrap();
        let fixtures = tempfile::tempdir().unwrap();
        let opts = RunOptions {
            results_dir: results.path().to_path_buf(),
            quiet: true,
            verify: true,
            fixtures: FixtureStore::new(fixtures.path()),
            ..RunOptions::default()
        };
        Self {
            _results: results,
            _fixtures: fixtures,
            opts,
        }
    }
}
