# frozen_string_literal: true

# bin/bench's driver: runs the scenarios named on the command line (all of
# them without arguments) in every implementation that can express them,
# each run in a fresh process, and writes results.json, results.md and the
# PNG charts to UM_BENCH_OUT (default benchmark/results/).
#
#   UM_BENCH_SCALE=0.1   shrinks every scenario (default 1.0)
#   UM_BENCH_RUNS=5      runs per measurement; the median is kept (default 3)
#   UM_BENCH_IMPLS=um,c  only these implementations
#   UM_BENCH_YJIT=0      Ruby children without YJIT (default: with)
#   UM_BENCH_GC_SLOTS=0  Ruby children with Ruby's default initial heap
#                        (default: 200000 small slots, see harness/runner.rb)

require "fileutils"
require "json"
require_relative "harness/scenarios"
require_relative "harness/runner"
require_relative "harness/report"
require_relative "harness/chart"

module Bench
  class Main
    def initialize(argv)
      unknown = argv - Scenarios.names
      abort "bin/bench: unknown scenario #{unknown.join(', ')}; known: #{Scenarios.names.join(' ')}" if unknown.any?
      @names = argv.empty? ? Scenarios.names : argv
      @runs = Integer(ENV.fetch("UM_BENCH_RUNS", "3"))
      abort "bin/bench: UM_BENCH_RUNS must be at least 1" if @runs < 1
      @only = ENV["UM_BENCH_IMPLS"]&.split(",")
      @out = File.expand_path(ENV.fetch("UM_BENCH_OUT", File.join(__dir__, "results")))
      FileUtils.mkdir_p(@out)
    end

    def run
      machine = Report.machine
      runs, tables = main_scenarios
      medians = runs.transform_values { |by_impl| by_impl.transform_values { Runner.median(it) } }
      cost, cost_tables = cost_scenario if @names.include?("cost")
      targets = Report.targets(runs) + (cost ? Report.cost_targets(cost) : [])
      tables << Report.targets_table(targets) if targets.any?
      tables.concat(cost_tables) if cost
      puts tables

      title = "#{machine[:cpu]}, #{machine[:cores]} cores, Linux #{machine[:kernel]}, " \
              "Ruby #{RUBY_VERSION}#{' + YJIT' if machine[:yjit]}"
      Chart.scenarios(medians, @out, title) if medians.any?
      Chart.cost(cost, @out, "cost of concurrency: #{title}") if cost
      File.write(File.join(@out, "results.md"), tables.join("\n"))
      File.write(File.join(@out, "results.json"), JSON.pretty_generate(
        machine:, scale: Scenarios.scale, runs: @runs,
        scenarios: runs.transform_values { |by_impl| by_impl.transform_values { Report.row(it) } },
        cost:, targets:
      ))
      warn "bin/bench: results in #{@out}"
    end

    private

    def impls(scenario) = @only ? scenario.impls & @only : scenario.impls

    def main_scenarios
      tables = []
      all_runs = {}
      Scenarios.main.select { @names.include?(it.name) }.each do |scenario|
        runs = measure(scenario, scenario.name)
        next if runs.empty?
        all_runs[scenario.name] = runs
        tables << Report.scenario_table(scenario, runs)
      end
      [all_runs, tables]
    end

    def cost_scenario
      entries = Scenarios.cost.flat_map do |scenario|
        measure(scenario, "cost #{scenario.name} x#{scenario.params[:groups]}").map do |impl, runs|
          r = Runner.median(runs)
          { work: scenario.name, groups: scenario.params[:groups], impl:, ops_per_s: r.ops_per_s.round,
            rss_per_group_kb: ((r.rss_kb - r.base_rss_kb).to_f / scenario.params[:groups]).round(2),
            wall: r.wall.round(4), cpu: r.cpu.round(4), rss_kb: r.rss_kb }
        end
      end
      [entries, entries.group_by { it[:work] }.map { |work, list| Report.cost_table(work, list) }]
    end

    # Runs interleave the implementations, so a slow spell on this shared
    # machine hits them all alike.
    def measure(scenario, label)
      runs = {}
      @runs.times do |i|
        impls(scenario).each do |impl|
          r = Runner.run(impl, scenario)
          (runs[impl] ||= []) << r
          warn format("%-22s %-12s run %d/%d %10s ops/s  wall %6.3f s  cpu %6.3f s  rss %7.1f MiB",
                      label, impl, i + 1, @runs, Report.human(r.ops_per_s), r.wall, r.cpu, r.rss_kb / 1024.0)
        end
      end
      runs
    end
  end
end

Bench::Main.new(ARGV).run
