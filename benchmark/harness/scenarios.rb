# frozen_string_literal: true

module Bench
  # What each scenario runs, at which size, in which implementations.
  # UM_BENCH_SCALE (default 1.0) multiplies every count and the minimum time
  # a measurement lasts.
  module Scenarios
    RUBY_IMPLS = %w[threads um_fs um async_epoll async_uring].freeze
    STREAM_IMPLS = (RUBY_IMPLS + %w[c]).freeze
    COST_IMPLS = %w[threads um_fs um async_epoll c].freeze
    COST_GROUPS = [1, 10, 100, 1_000, 10_000].freeze
    COST_MESSAGES = 64_000 # in all, split among the groups

    Scenario = Data.define(:name, :impls, :params, :expected_ops, :min_time)

    def self.scale = Float(ENV.fetch("UM_BENCH_SCALE", "1.0"))

    def self.count(base) = [(base * scale).round, 1].max

    # The main scenarios, each measured for at least `min_time` seconds per
    # run (whole rounds of the work are repeated until then).
    def self.main
      min_time = 1.0 * scale
      stream = ->(name) {
        params = { groups: 32, count: count(2_000) }
        Scenario.new(name, STREAM_IMPLS, params, params[:groups] * params[:count], min_time)
      }
      mutex = ->(name) {
        params = { groups: 8, workers: 4, count: count(name == "mutex_io" ? 500 : 1_000) }
        Scenario.new(name, RUBY_IMPLS, params, params.values.inject(:*), min_time)
      }
      queue = { groups: 8, producers: 2, consumers: 2, count: count(2_000) }
      snooze = { count: count(20_000) }
      ssl = { groups: 8, count: count(1_000) }
      [
        stream.("pipe"), stream.("socketpair"),
        mutex.("mutex_cpu"), mutex.("mutex_io"),
        Scenario.new("queue", RUBY_IMPLS, queue, queue[:groups] * queue[:producers] * queue[:count], min_time),
        Scenario.new("snooze", RUBY_IMPLS, snooze, 2 * snooze[:count], min_time),
        Scenario.new("ssl", RUBY_IMPLS, ssl, ssl[:groups] * ssl[:count], min_time)
      ]
    end

    # The most groups the fd limit allows: two fds per group, and a margin
    # for the process's own. A limit below 20,064 turns the 10,000 groups of
    # the cost scenario into fewer (the tables show the number used).
    def self.max_groups = (Process.getrlimit(:NOFILE)[1] - 64) / 2

    # The `cost` scenario: pipe and socketpair work at growing numbers of
    # groups, one round per run (the round is the measurement).
    def self.cost
      %w[pipe socketpair].flat_map do |work|
        COST_GROUPS.map { [it, max_groups].min }.uniq.map do |groups|
          per_group = [(count(COST_MESSAGES) / groups.to_f).ceil, 1].max
          Scenario.new(work, COST_IMPLS, { groups:, count: per_group }, groups * per_group, 0.0)
        end
      end
    end

    def self.names = main.map(&:name) + ["cost"]
  end
end
