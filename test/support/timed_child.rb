# frozen_string_literal: true

# Runs the block in a forked child and returns its exit status; a child that
# runs longer than +limit+ seconds is killed and the test fails, so a hang
# shows as a failure instead of stopping the suite.
module TimedChild
  def in_timed_child(limit)
    pid = fork do
      status = begin
        yield ? 0 : 1
      rescue Exception => e # rubocop:disable Lint/RescueException
        warn "child: #{e.class}: #{e.message}\n#{e.backtrace.first(5).join("\n")}"
        2
      end
      exit!(status)
    end
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + limit
    loop do
      _, status = Process.wait2(pid, Process::WNOHANG)
      return status if status

      if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
        Process.kill(:KILL, pid)
        Process.wait(pid)
        flunk "child still running after #{limit} s (hung)"
      end
      sleep 0.02
    end
  end
end
