# frozen_string_literal: true

require_relative "helper"
require_relative "fuzz/runner"

# Random sequences of calls on live objects (see test/fuzz/runner.rb), each
# case in a forked child with a time limit. Fails when a child crashes (a
# signal, an ASan report, an exception of a class the API must not raise)
# or hangs; the failure message gives each failed case's seed, how it ended,
# its last calls and the end of its stderr. Replay one case with
#   UM_FUZZ_SEED=<seed> UM_FUZZ_CASES=1 bin/test test/test_fuzz.rb
# and run long campaigns with bin/fuzz.
class FuzzTest < Minitest::Test
  # Cases per run: small enough for CI (the release build runs them in well
  # under a minute).
  DEFAULT_CASES = 80

  # Seeds that crashed or hung on some version of the library: they run on
  # every run besides the random ones (as long as the fuzz's own code is
  # unchanged a seed replays the same calls).
  #   9024: UM::IO#read(-2**63) negates LONG_MIN in um_io.c (UBSan report;
  #         passes in the release build)
  #   416272752: ssl_read with a maxlen of 2**32 grew and zeroed a 2 GiB
  #         IO::Buffer before reading, twice: a hang
  KNOWN_SEEDS = [9024, 416_272_752].freeze

  def test_fuzz_random_cases
    cases = Integer(ENV.fetch("UM_FUZZ_CASES", DEFAULT_CASES.to_s))
    runner = UMFuzz::Runner.new(cases: cases, out: StringIO.new).run
    report(runner)
  end

  def test_fuzz_known_seeds
    skip "no known crashing seeds" if KNOWN_SEEDS.empty?
    skip "replaying UM_FUZZ_SEED only" if ENV["UM_FUZZ_SEED"]

    failures = KNOWN_SEEDS.flat_map { |seed| UMFuzz::Runner.new(cases: 1, seed: seed, out: StringIO.new).run.failures }
    assert failures.empty?, failures.join("\n")
  end

  private

  def report(runner)
    puts "\n#{runner.summary}"
    assert runner.failures.empty?, "#{runner.summary}\n\n#{runner.failures.join("\n")}"
  end
end
