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
    # [scenario, implementation, peer, minimum ratio of ops/s]: from issue 5,
    # and issue 13's for mutex_io, ssl and the streams under the scheduler.
    TARGETS = [
      *%w[pipe socketpair].flat_map do |s|
        [[s, "um", "c", 0.5], [s, "um", "async_epoll", 1.5], [s, "um_fs", "c", 0.1], [s, "um_fs", "async_epoll", 1.3]]
      end,
      ["mutex_cpu", "um", "threads", 1.0],
      ["queue", "um", "threads", 2.0],
      ["mutex_io", "um", "threads", 2.0],
      ["mutex_io", "um", "async_epoll", 1.5],
      ["mutex_io", "um_fs", "async_epoll", 1.0],
      ["ssl", "um", "async_epoll", 1.5],
      ["ssl", "um_fs", "async_epoll", 1.1]
    ].freeze

    # [scenario, implementation, peer, maximum ratio of peak RSS].
    RSS_TARGETS = [["queue", "um", "async_epoll", 1.5], ["queue", "um_fs", "async_epoll", 1.5]].freeze

    # The cost scenario at its largest group count: ops/s against the
    # implementation's own at COST_BASE_GROUPS groups and against
    # async_epoll's, and um's RSS per group.
    COST_BASE_GROUPS = 10
    COST_TARGETS = { own: 0.5, peer: 1.5, rss_per_group_kb: 8.0 }.freeze
    COST_TARGET_IMPLS = %w[um um_fs].freeze

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
    # The figure compared is ops/s, or another Result method (:rss_kb).
    def self.ratio(by_impl, impl, peer, figure = :ops_per_s)
      mine = by_impl[impl]
      theirs = by_impl[peer]
      return unless mine && theirs
      ratios = mine.zip(theirs).map { |a, b| a.public_send(figure).to_f / b.public_send(figure) }.sort
      ratios[ratios.size / 2]
    end

    def self.target(scenario, impl, peer, what, ratio, min: nil, max: nil)
      met = min ? ratio >= min : ratio <= max
      { scenario:, impl:, peer:, what:, ratio: ratio.round(3), min:, max:, met: }
    end

    # runs: { scenario name => { impl => [Result per run] } }
    def self.targets(runs)
      ops = TARGETS.filter_map do |scenario, impl, peer, min|
        ratio = runs[scenario] && ratio(runs[scenario], impl, peer)
        target(scenario, impl, peer, "ops/s", ratio, min:) if ratio
      end
      rss = RSS_TARGETS.filter_map do |scenario, impl, peer, max|
        ratio = runs[scenario] && ratio(runs[scenario], impl, peer, :rss_kb)
        target(scenario, impl, peer, "peak RSS", ratio, max:) if ratio
      end
      ops + rss
    end

    # entries: the cost scenario's rows ({work:, groups:, impl:, ops_per_s:,
    # rss_per_group_kb:}); targets at the largest group count measured.
    def self.cost_targets(entries)
      entries.group_by { it[:work] }.flat_map do |work, list|
        top = list.map { it[:groups] }.max
        at = ->(groups, impl) { list.find { it[:groups] == groups && it[:impl] == impl } }
        COST_TARGET_IMPLS.flat_map do |impl|
          mine = at.(top, impl) or next []
          base = at.(COST_BASE_GROUPS, impl)
          peer = at.(top, "async_epoll")
          name = "cost #{work} x#{top}"
          [
            (target(name, impl, "#{impl} x#{COST_BASE_GROUPS}", "ops/s", mine[:ops_per_s].to_f / base[:ops_per_s],
                    min: COST_TARGETS[:own]) if base),
            (target(name, impl, "async_epoll", "ops/s", mine[:ops_per_s].to_f / peer[:ops_per_s],
                    min: COST_TARGETS[:peer]) if peer),
            (target(name, impl, nil, "RSS KiB per group", mine[:rss_per_group_kb],
                    max: COST_TARGETS[:rss_per_group_kb]) if impl == "um")
          ].compact
        end
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

    # Each row also gives the implementation's ops/s against its own at
    # COST_BASE_GROUPS groups, and against async_epoll at the same count.
    def self.cost_table(work, entries)
      rows = entries.map do |e|
        base = entries.find { it[:impl] == e[:impl] && it[:groups] == COST_BASE_GROUPS }
        peer = entries.find { it[:impl] == "async_epoll" && it[:groups] == e[:groups] }
        ratios = [base, peer].map { it ? format("%.3f", e[:ops_per_s].to_f / it[:ops_per_s]) : "" }
        [e[:groups].to_s, e[:impl], human(e[:ops_per_s]), format("%.1f", e[:rss_per_group_kb]), *ratios]
      end
      markdown("cost: #{work}", ["groups", "impl", "ops/s", "RSS KiB per group",
                                 "x own at #{COST_BASE_GROUPS} groups", "x async_epoll"], rows)
    end

    def self.targets_table(targets)
      rows = targets.map do |t|
        compared = t[:peer] ? "#{t[:impl]} / #{t[:peer]}" : t[:impl]
        [t[:scenario], "#{t[:what]}: #{compared}", format("%.3f", t[:ratio]),
         t[:min] ? ">= #{t[:min]}" : "<= #{t[:max]}", t[:met] ? "met" : "MISSED"]
      end
      heading = Scenarios.scale < 1 ? "targets (UM_BENCH_SCALE=#{Scenarios.scale}: too small to judge)" : "targets"
      markdown(heading, ["scenario", "figure", "measured", "target", ""], rows)
    end

    def self.markdown(heading, header, rows)
      lines = ["### #{heading}", "", "| #{header.join(' | ')} |", "|#{header.map { '---' }.join('|')}|"]
      lines.concat(rows.map { "| #{it.join(' | ')} |" })
      lines.join("\n") + "\n"
    end
  end
end
