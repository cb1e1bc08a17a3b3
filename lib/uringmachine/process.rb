# frozen_string_literal: true

class UringMachine
  # Process::Status.wait flags that match waitid options: WEXITED is implied
  # by waitpid, WSTOPPED is WUNTRACED, and WCONTINUED (which Ruby does not
  # define) is passed to waitpid as it is.
  WAITPID_FLAGS_FOR_WAITID = { WSTOPPED => Process::WUNTRACED, WCONTINUED => WCONTINUED }.freeze
  private_constant :WAITPID_FLAGS_FOR_WAITID

  # call-seq: waitid_status(idtype, id, options) -> Process::Status or nil
  #
  # Like #waitid, but reaps the child and returns a Process::Status (with
  # #pid, #exitstatus, #signaled?, #termsig, #stopped?, #stopsig...), as
  # Process.wait2 does. Only the calling fiber waits.
  #
  # Ruby has no public way to build a Process::Status, so the child is
  # waited for through io_uring with UM::WNOWAIT added (it stays reapable),
  # then reaped with Process::Status.wait, which returns at once. A stopped
  # child (UM::WSTOPPED) or a continued one (UM::WCONTINUED) is reported
  # and left running or stopped, as waitpid(2) does.
  #
  # With UM::WNOHANG and no child ready, returns nil. UM::WNOWAIT is not
  # accepted: the status can only be had by reaping.
  #
  # @example
  #   pid = fork { exit 7 }
  #   status = machine.waitid_status(UM::P_PID, pid, UM::WEXITED)
  #   status.exitstatus  # => 7
  def waitid_status(idtype, id, options)
    raise TypeError, "options must be an Integer, not #{options.class}" unless options.is_a?(Integer)
    raise ArgumentError, "waitid_status reaps the child: WNOWAIT is not supported" if options.anybits?(WNOWAIT)

    flags = Process::WNOHANG
    WAITPID_FLAGS_FOR_WAITID.each { |opt, flag| flags |= flag if options.anybits?(opt) }
    loop do
      pid, = waitid(idtype, id, options | WNOWAIT)
      return nil if pid.zero?

      # Blocking: a fiber scheduler must not turn this into another wait.
      status = Fiber.blocking { Process::Status.wait(pid, flags) }
      # nil: the reported state went away meanwhile (a stopped child was
      # continued): wait for the next one.
      return status if status || options.anybits?(WNOHANG)
    end
  end
end
