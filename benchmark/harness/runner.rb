# frozen_string_literal: true

require "json"
require "open3"
require "rbconfig"

module Bench
  # Runs one measurement in a child process and reads back its JSON line.
  module Runner
    CHILD = File.expand_path("child.rb", __dir__)
    LIB = File.expand_path("../../lib", __dir__)

    Result = Data.define(:ops, :wall, :cpu, :rss_kb, :base_rss_kb, :rounds) do
      def ops_per_s = ops / wall
    end

    # Raised when a child fails or prints something that is not a result.
    class ChildFailed < StandardError; end

    # Ruby children run with YJIT, as applications in production do, unless
    # UM_BENCH_YJIT=0.
    def self.yjit? = ENV.fetch("UM_BENCH_YJIT", "1") != "0"

    def self.command(impl, scenario)
      if impl == "c"
        dir = ENV.fetch("UM_BENCH_C_DIR") { raise ChildFailed, "UM_BENCH_C_DIR is not set (run bin/bench)" }
        p = scenario.params
        [File.join(dir, scenario.name), p.fetch(:groups), p.fetch(:count), scenario.min_time].map(&:to_s)
      else
        [RbConfig.ruby, *("--yjit" if yjit?), "-I", LIB, "-rbundler/setup", CHILD, impl, scenario.name,
         JSON.generate(scenario.params), scenario.min_time].map(&:to_s)
      end
    end

    # Ruby children start with a heap of this many small slots (0: Ruby's
    # default). A benchmark process has a small heap, mostly old objects, and
    # where it lands against the GC's rule of keeping 20% of the slots free
    # decided whole figures: one um_fs measurement gave 218K msg/s in one
    # run and 176K in the next, and a slow run made 93 major GCs in two
    # seconds where a fast one made 3. A larger start takes that chance out,
    # for every implementation alike.
    def self.gc_slots = Integer(ENV.fetch("UM_BENCH_GC_SLOTS", "200000"))

    def self.env
      gc_slots.zero? ? {} : { "RUBY_GC_HEAP_0_INIT_SLOTS" => gc_slots.to_s }
    end

    def self.run(impl, scenario)
      out, err, status = Open3.capture3(env, *command(impl, scenario))
      unless status.success?
        raise ChildFailed, "#{impl} #{scenario.name} #{scenario.params} failed (#{status}): #{err.strip}"
      end
      fields = JSON.parse(out.lines.last.to_s, symbolize_names: true)
      result = Result.new(**fields)
      if result.ops != scenario.expected_ops * result.rounds
        raise ChildFailed, "#{impl} #{scenario.name}: #{result.ops} operations in #{result.rounds} rounds, " \
                           "expected #{scenario.expected_ops} a round"
      end
      result
    rescue JSON::ParserError
      raise ChildFailed, "#{impl} #{scenario.name} printed no result: #{out.inspect} #{err.strip}"
    end

    # The run with the median operations per second.
    def self.median(results) = results.sort_by(&:ops_per_s)[results.size / 2]
  end
end
