# frozen_string_literal: true

require "socket"
require "async"
require_relative "workloads"

module Bench
  # One Async task per unit, with core IO, Queue and Mutex. The selector
  # io-event uses (EPoll or URing) is chosen by IO_EVENT_SELECTOR, which the
  # harness sets before this file is loaded.
  class Async
    include Workloads

    def run_units(procs)
      Sync do |task|
        procs.map { |pr| task.async { pr.call } }.each(&:wait)
      end
    end
  end
end
