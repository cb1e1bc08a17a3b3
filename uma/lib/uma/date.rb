# frozen_string_literal: true

module Uma
  # The Date header's value, formatted once a second.
  module Date
    @second = nil
    @value = nil

    # The current time as an HTTP Date field value, remade once a second.
    def self.httpdate
      now = Process.clock_gettime(Process::CLOCK_REALTIME, :second)
      return @value if now == @second

      @second = now
      @value = Time.at(now).utc.strftime("%a, %d %b %Y %H:%M:%S GMT").freeze
    end
  end
end
