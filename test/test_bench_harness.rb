# frozen_string_literal: true

require "tmpdir"
require_relative "helper"
require_relative "../benchmark/harness/report"

# The parts of bin/bench that compute what is reported (the CI smoke pass
# runs every scenario for real).
class BenchHarnessTest < Minitest::Test
  Result = Bench::Runner::Result

  def result(ops, wall) = Result.new(ops:, wall:, cpu: wall, rss_kb: 1, base_rss_kb: 1, rounds: 1)

  # Ratios pair run i with run i, then take the median: a slow spell that
  # hit both sides of one run does not decide the figure.
  def test_ratio_is_the_median_of_run_by_run_ratios
    by_impl = {
      "um" => [result(300, 1.0), result(174, 1.0), result(240, 1.0)],
      "c" => [result(600, 1.0), result(290, 1.0), result(600, 1.0)]
    }
    # Run ratios 0.5, 0.6, 0.4; medians taken separately would give 240 / 600.
    assert_in_delta 0.5, Bench::Report.ratio(by_impl, "um", "c"), 1e-9
    assert_nil Bench::Report.ratio(by_impl, "um", "threads")
    assert_equal %w[um c], by_impl.keys, "asking for an absent peer added a key"
  end

  def test_targets_report_met_and_missed
    runs = {
      "pipe" => { "um_fs" => [result(110, 1.0)], "async_epoll" => [result(100, 1.0)] },
      "queue" => { "um" => [result(300, 1.0)], "threads" => [result(100, 1.0)] }
    }
    targets = Bench::Report.targets(runs).to_h { [[it[:scenario], it[:impl], it[:peer]], it] }
    assert_equal false, targets[%w[pipe um_fs async_epoll]][:met]
    assert_in_delta 1.1, targets[%w[pipe um_fs async_epoll]][:ratio], 1e-9
    assert_equal true, targets[%w[queue um threads]][:met]
    refute targets.key?(%w[pipe um c]), "a target without its peer's figures was reported"
  end

  def test_rss_targets_compare_peak_rss
    rss = ->(kb) { Result.new(ops: 1, wall: 1.0, cpu: 1.0, rss_kb: kb, base_rss_kb: 1, rounds: 1) }
    runs = { "queue" => { "um" => [rss.(140_000)], "um_fs" => [rss.(100_000)], "async_epoll" => [rss.(90_000)] } }
    targets = Bench::Report.targets(runs).select { it[:what] == "peak RSS" }.to_h { [it[:impl], it] }
    assert_equal false, targets["um"][:met]
    assert_in_delta 1.556, targets["um"][:ratio], 1e-3
    assert_equal true, targets["um_fs"][:met]
  end

  def test_cost_targets_at_the_largest_group_count
    row = ->(groups, impl, ops, rss = 1.0) { { work: "pipe", groups:, impl:, ops_per_s: ops, rss_per_group_kb: rss } }
    entries = [
      row.(10, "um", 600), row.(10, "um_fs", 300), row.(10, "async_epoll", 250),
      row.(1000, "um", 100, 30.0), row.(1000, "um_fs", 160), row.(1000, "async_epoll", 100)
    ]
    targets = Bench::Report.cost_targets(entries).to_h { [[it[:impl], it[:peer], it[:what]], it] }
    own = targets[["um", "um x10", "ops/s"]]
    assert_in_delta 100 / 600.0, own[:ratio], 1e-3
    assert_equal false, own[:met]
    assert_equal true, targets[["um_fs", "um_fs x10", "ops/s"]][:met]
    assert_equal false, targets[["um", "async_epoll", "ops/s"]][:met]
    assert_equal true, targets[["um_fs", "async_epoll", "ops/s"]][:met]
    assert_equal false, targets[["um", nil, "RSS KiB per group"]][:met]
    assert_equal "cost pipe x1000", own[:scenario]
    table = Bench::Report.targets_table(Bench::Report.cost_targets(entries))
    assert_includes table, "| cost pipe x1000 | RSS KiB per group: um | 30.000 | <= 8.0 | MISSED |"
  end

  def test_median_run
    runs = [result(100, 1.0), result(300, 1.0), result(200, 1.0)]
    assert_equal 200, Bench::Runner.median(runs).ops_per_s
  end

  def test_scale_shrinks_counts_but_not_below_one
    with_env("UM_BENCH_SCALE" => "0.0001") do
      pipe = Bench::Scenarios.main.find { it.name == "pipe" }
      assert_equal({ groups: 32, count: 1 }, pipe.params)
      assert_equal 32, pipe.expected_ops
    end
  end

  def test_cost_groups_fit_the_fd_limit
    groups = Bench::Scenarios.cost.map { it.params[:groups] }.uniq
    assert_equal 1, groups.first
    assert_operator groups.max, :<=, (Process.getrlimit(:NOFILE)[1] - 64) / 2
    Bench::Scenarios.cost.each do |s|
      assert_equal s.params[:groups] * s.params[:count], s.expected_ops
    end
  end

  def test_child_command_for_ruby_and_c
    pipe = Bench::Scenarios.main.find { it.name == "pipe" }
    ruby = Bench::Runner.command("um", pipe)
    assert_includes ruby, "um"
    assert_includes ruby, JSON.generate(pipe.params)
    with_env("UM_BENCH_C_DIR" => "/some/dir") do
      assert_equal ["/some/dir/pipe", "32", pipe.params[:count].to_s, pipe.min_time.to_s],
        Bench::Runner.command("c", pipe)
    end
    with_env("UM_BENCH_C_DIR" => nil) do
      assert_raises(Bench::Runner::ChildFailed) { Bench::Runner.command("c", pipe) }
    end
  end

  # Whatever a child runs, the harness checks its operations against the
  # scenario's, round for round.
  def test_run_checks_the_operations_a_child_reports
    Dir.mktmpdir do |dir|
      File.write(File.join(dir, "pipe"), <<~SH)
        #!/bin/sh
        echo '{"ops":64,"wall":0.5,"cpu":0.5,"rss_kb":10,"base_rss_kb":8,"rounds":2}'
      SH
      File.chmod(0o755, File.join(dir, "pipe"))
      scenario = ->(expected) { Bench::Scenarios::Scenario.new("pipe", %w[c], { groups: 1, count: expected }, expected, 0.0) }
      with_env("UM_BENCH_C_DIR" => dir) do
        assert_equal 128, Bench::Runner.run("c", scenario.(32)).ops_per_s
        error = assert_raises(Bench::Runner::ChildFailed) { Bench::Runner.run("c", scenario.(33)) }
        assert_match(/64 operations in 2 rounds, expected 33/, error.message)
      end
    end
  end

  private

  def with_env(vars)
    saved = vars.keys.to_h { [it, ENV[it]] }
    vars.each { |k, v| ENV[k] = v }
    yield
  ensure
    saved.each { |k, v| ENV[k] = v }
  end
end
