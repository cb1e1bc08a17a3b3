# frozen_string_literal: true

require_relative "helper"
require "open3"

# bin/setup's choice of the ruby3.4 source version (bin/lib/ruby_source.sh)
# and um_find_ruby (bin/lib/ruby_env.sh), run in bash with a fake download
# command and a fake cache: no download, no build.
class SetupTest < Minitest::Test
  ROOT = File.expand_path("..", __dir__)
  PINNED = "3.4.5-1~exp1"
  BASH = `bash -c 'command -v bash'`.chomp

  # Runs a bash script with the two libraries sourced; returns
  # [stdout, stderr, status].
  def bash(script, env = {})
    Open3.capture3(env, BASH, "-c", <<~SH, chdir: ROOT)
      set -euo pipefail
      source bin/lib/ruby_env.sh
      source bin/lib/ruby_source.sh
      #{script}
    SH
  end

  # A download command that succeeds only for the given versions and
  # records each version it was asked for.
  def fake_fetch(working)
    <<~SH
      fetch() {
        echo "$1" >> "$TRIED"
        case "$1" in #{working.empty? ? 'NONE' : working.join('|')}) return 0 ;; *) return 1 ;; esac
      }
    SH
  end

  def choose(working, available)
    Dir.mktmpdir do |dir|
      tried = File.join(dir, "tried")
      File.write(tried, "")
      out, err, status = bash("#{fake_fetch(working)}\num_choose_ruby_source fetch #{PINNED} #{available.join(' ')}",
                              "TRIED" => tried)
      [out.chomp, err, status, File.read(tried).split]
    end
  end

  def test_upstream_version
    out, = bash("um_upstream_version 3.4.11-1~exp1; um_upstream_version 1:3.4.5-2; um_upstream_version 3.4.5")
    assert_equal %w[3.4.11 3.4.5 3.4.5], out.split
  end

  def test_candidates_pinned_first_then_newest_3_4
    out, = bash("um_ruby_source_candidates #{PINNED} 3.4.5-1~exp1 3.4.9-1~exp1 3.3.8-1 3.4.11-1~exp1 3.5.0-1 3.4.11-1~exp1")
    assert_equal [PINNED, "3.4.11-1~exp1", "3.4.9-1~exp1"], out.split
  end

  def test_pinned_version_used_when_it_downloads
    version, err, status, tried = choose([PINNED], [PINNED, "3.4.11-1~exp1"])
    assert status.success?, err
    assert_equal PINNED, version
    assert_equal [PINNED], tried
    refute_match(/instead/, err)
  end

  # The pinned version left the archive and the newest listed one answers
  # 404 (as 3.4.11-1~exp1 did): the next newest that downloads is built,
  # and the log says so.
  def test_fallback_to_newest_version_that_downloads
    version, err, status, tried = choose(["3.4.9-1~exp1", "3.4.7-1~exp1"], ["3.4.7-1~exp1", "3.4.11-1~exp1", "3.4.9-1~exp1"])
    assert status.success?, err
    assert_equal "3.4.9-1~exp1", version
    assert_equal [PINNED, "3.4.11-1~exp1", "3.4.9-1~exp1"], tried
    assert_match(/ruby3.4 #{Regexp.escape(PINNED)} is not in the archive any more; building 3.4.9-1~exp1 instead/, err)
  end

  def test_no_version_downloads
    version, err, status, tried = choose([], ["3.4.11-1~exp1"])
    refute status.success?
    assert_equal "", version
    assert_equal [PINNED, "3.4.11-1~exp1"], tried
    assert_match(/no ruby3.4 3.4.x source package could be downloaded/, err)
  end

  # A Ruby built from a fallback version lives in a prefix keyed by that
  # version, where um_find_ruby finds it; the pinned prefix (the cache
  # layout so far) still comes first.
  def test_find_ruby_in_prefix_of_built_version
    Dir.mktmpdir do |cache|
      env = { "XDG_CACHE_HOME" => cache, "PATH" => tools_only_path(cache) }
      %w[3.4.9 3.4.11].each { |v| link_ruby(File.join(cache, "uringmachine", "ruby-#{v}")) }
      out, err, status = bash("um_find_ruby", env)
      assert status.success?, err
      assert_equal File.join(cache, "uringmachine", "ruby-3.4.11", "bin", "ruby"), out.chomp

      link_ruby(File.join(cache, "uringmachine", "ruby-3.4.5"))
      out, = bash("um_find_ruby; um_ruby_prefix 3.4.11", env)
      assert_equal [File.join(cache, "uringmachine", "ruby-3.4.5", "bin", "ruby"),
                    File.join(cache, "uringmachine", "ruby-3.4.11")], out.split("\n")
    end
  end

  def test_find_ruby_fails_without_one
    Dir.mktmpdir do |cache|
      _, _, status = bash("um_find_ruby", "XDG_CACHE_HOME" => cache, "PATH" => tools_only_path(cache))
      refute status.success?
    end
  end

  private

  # A PATH with the tools the scripts use and no ruby.
  def tools_only_path(dir)
    bin = File.join(dir, "tools")
    FileUtils.mkdir_p(bin)
    %w[ls sort grep].each { |tool| File.symlink(`bash -c 'command -v #{tool}'`.chomp, File.join(bin, tool)) }
    bin
  end

  def link_ruby(prefix)
    FileUtils.mkdir_p(File.join(prefix, "bin"))
    File.symlink(RbConfig.ruby, File.join(prefix, "bin", "ruby"))
  end
end
