# frozen_string_literal: true

require "socket"
require "uringmachine"
require_relative "workloads"

module Bench
  # One fiber per unit under UM::FiberScheduler, with core IO, Queue and
  # Mutex: unmodified Ruby code on the machine.
  class UMFiberScheduler
    include Workloads

    # One machine for every round's scheduler, as an application keeps one
    # per thread.
    def initialize
      @machine = UM.new
    end

    def run_units(procs)
      error = nil
      Fiber.set_scheduler(UM::FiberScheduler.new(@machine))
      procs.each do |pr|
        Fiber.schedule do
          pr.call
        rescue Exception => e # rubocop:disable Lint/RescueException
          error ||= e
        end
      end
      Fiber.set_scheduler(nil) # runs every fiber to its end
      raise error if error
    end
  end
end
