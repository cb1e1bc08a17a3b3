# frozen_string_literal: true

require "socket"
require_relative "workloads"

module Bench
  # One Ruby thread per unit, with core IO, Queue and Mutex.
  class Threads
    include Workloads

    def run_units(procs)
      procs.map { |pr| Thread.new(&pr) }.each(&:join)
    end
  end
end
