# frozen_string_literal: true

class UringMachine
  # call-seq: ssl_set_bio(ssl_socket) -> ssl_socket
  #
  # Routes the TLS record I/O of an OpenSSL::SSL::SSLSocket through the
  # machine: a BIO whose reads and writes are recv and send operations on
  # the socket's fd, suspending only the calling fiber. Afterwards the
  # socket's own #connect, #accept, #write, #readpartial, #gets, #close...
  # work unchanged, on the ring. Call it before #connect/#accept (or later:
  # the BIO takes over from the next record). Calling it again does nothing
  # (or moves the socket to this machine).
  #
  # Raises TypeError for anything but an OpenSSL::SSL::SSLSocket.
  def ssl_set_bio(ssl_socket)
    install_ssl_bio(ssl_socket)
    ssl_socket.extend(SSLSocketOnRing) unless ssl_socket.is_a?(SSLSocketOnRing)
    ssl_socket
  end

  # Extends an SSLSocket whose BIO runs on a machine. When an exception
  # (a timeout, a terminate) interrupts a BIO operation, OpenSSL sees the
  # operation fail with EINTR and the socket method raises its own error, or
  # ignores it (the closing shutdown does); this raises the original
  # exception instead, once the method is done. The *_nonblock methods make
  # one attempt that does not wait, so read_nonblock gives
  # IO::WaitReadable (or :wait_readable) as on a plain socket.
  module SSLSocketOnRing
    %i[
      connect connect_nonblock accept accept_nonblock sysread sysread_nonblock
      syswrite syswrite_nonblock sysclose
    ].each do |name|
      nonblock = name.end_with?("_nonblock")
      define_method(name) do |*args, **opts, &block|
        UringMachine.__send__(:ssl_interruption, self) # a stale one (from #stop) is dropped
        UringMachine.__send__(:ssl_nonblock, self, true) if nonblock
        result = super(*args, **opts, &block)
        interruption = UringMachine.__send__(:ssl_interruption, self)
        interruption ? __um_interrupted(interruption.first, result) : result
      rescue SystemCallError, IOError, OpenSSL::SSL::SSLError
        interruption = UringMachine.__send__(:ssl_interruption, self)
        raise unless interruption

        __um_interrupted(interruption.first, nil)
      ensure
        UringMachine.__send__(:ssl_nonblock, self, false) if nonblock
      end
    end

    private

    def __um_interrupted(value, result)
      raise value if value.is_a?(Exception)

      result || value
    end
  end
end
