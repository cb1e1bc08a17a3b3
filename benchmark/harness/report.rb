# frozen_string_literal: true

require "etc"
require "json"
require "time"
require_relative "runner"
require_relative "scenarios"

module Bench
  # Turns the runs into the tables, the target check and the JSON file.
  # Ratios are taken run by run (run i of one implementation against run i
  # of the other, measured one right after the other), then the median of
  # those: a slow spell on the shared machine then weighs on both sides.
  module Report
    # [scenario, implementation, peer, minimum ratio of ops/s], from issue 5.
    TARGETS = [
      *%w[pipe socketpair].flat_map do |s|
        [[s, "um", "c", 0.5], [s, "um", "async_epoll", 1.5], [s, "um_fs", "c", 0.1], [s, "um_fs", "async_epoll", 1.2]]
      end,
      ["mutex_cpu", "um", "threads", 1.0],
      ["queue", "um", "threads", 2.0],
      ["mutex_io", "um", "threads", 2.0]
    ].freeze

    def self.machine
      {
        cpu: File.read("/proc/cpuinfo")[/^model name\s*:\s*(.+)$/, 1],
        cores: Etc.nprocessors,
        kernel: Etc.uname[:release],
        ruby: RUBY_DESCRIPTION,
        yjit: Runner.yjit?,
        gc_heap_0_init_slots: Runner.gc_slots,
        liburing: `dpkg-query -W -f='${Version}' liburing-dev 2>/dev/null`.strip,
        gems: %w[async io-event].to_h { [it, Gem.loaded_specs[it]&.version&.to_s] },
        date: Time.now.utc.iso8601
      }
    end

    # The median run's figures, and every run's ops/s.
    def self.row(runs)
      r = Runner.median(runs)
      { ops_per_s: r.ops_per_s.round, wall: r.wall.round(4), cpu: r.cpu.round(4),
        rss_kb: r.rss_kb, base_rss_kb: r.base_rss_kb, rounds: r.rounds,
        runs_ops_per_s: runs.map { it.ops_per_s.round } }
    end

    # by_impl: { impl => [Result per run] }; nil when either side is absent.
    def self.ratio(by_impl, impl, peer)
      mine = by_impl[impl]
      theirs = by_impl[peer]
      return unless mine && theirs
      ratios = mine.zip(theirs).map { |a, b| a.ops_per_s / b.ops_per_s }.sort
      ratios[ratios.size / 2]
    end

    # runs: { scenario name => { impl => [Result per run] } }
    def self.targets(runs)
      TARGETS.filter_map do |scenario, impl, peer, min|
        ratio = runs[scenario] && ratio(runs[scenario], impl, peer)
        next unless ratio
        { scenario:, impl:, peer:, min:, ratio: ratio.round(3), met: ratio >= min }
      end
    end

    def self.human(n)
      return format("%.2fM", n / 1e6) if n >= 1e6
      return format("%.1fK", n / 1e3) if n >= 1e3
      format("%.0f", n)
    end

    def self.scenario_table(scenario, by_impl)
      rows = by_impl.map do |impl, runs|
        r = Runner.median(runs)
        ratios = %w[c threads].map { |peer| (x = ratio(by_impl, impl, peer)) ? format("%.3f", x) : "" }
        [impl, human(r.ops_per_s), format("%.3f", r.wall), format("%.3f", r.cpu),
         format("%.1f", r.rss_kb / 1024.0), *ratios]
      end
      heading = "#{scenario.name} (#{scenario.params.map { "#{_1} #{_2}" }.join(', ')})"
      markdown(heading, ["impl", "ops/s", "wall s", "cpu s", "peak RSS MiB", "x c", "x threads"], rows)
    end

    def self.cost_table(work, entries)
      rows = entries.map do |e|
        [e[:groups].to_s, e[:impl], human(e[:ops_per_s]), format("%.1f", e[:rss_per_group_kb])]
      end
      markdown("cost: #{work}", ["groups", "impl", "ops/s", "RSS KiB per group"], rows)
    end

    def self.targets_table(targets)
      rows = targets.map do |t|
        ["#{t[:scenario]}", "#{t[:impl]} / #{t[:peer]}", format("%.3f", t[:ratio]), ">= #{t[:min]}", t[:met] ? "met" : "MISSED"]
      end
      heading = Scenarios.scale < 1 ? "targets (UM_BENCH_SCALE=#{Scenarios.scale}: too small to judge)" : "targets"
      markdown(heading, ["scenario", "ratio of ops/s", "measured", "target", ""], rows)
    end

    def self.markdown(heading, header, rows)
      lines = ["### #{heading}", "", "| #{header.join(' | ')} |", "|#{header.map { '---' }.join('|')}|"]
      lines.concat(rows.map { "| #{it.join(' | ')} |" })
      lines.join("\n") + "\n"
    end
  end
end
