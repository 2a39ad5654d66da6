// sample.cpp: a tour of the Barista C++ client against a running cluster.
//
//     build/sample 127.0.0.1:9090,127.0.0.1:9091,127.0.0.1:9092
//
// Connects to the first replica that answers, creates a table, inserts rows with parameters, runs
// a transaction that commits and one that rolls back, sends a batch, reads the rows back (one with
// a NULL), shows a constraint violation's SQLSTATE, and closes the connection. Each step prints
// one line; the last is "done". (The same tour as the other languages' samples; the tests check
// every line, server/tests/sample_cpp.rs.)
#include <cstdint>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "barista_client.h"

using barista::client::Client;
using barista::client::Error;
using barista::client::Param;
using barista::client::Rows;
using barista::client::Transaction;

static std::vector<std::string> splitList(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

static void tour(Client& db) {
  std::cout << "connected to " << db.replica() << " (connection " << db.connectionId() << ")" << std::endl;

  db.execute("DROP TABLE IF EXISTS fruit");
  db.execute("CREATE TABLE fruit (id int PRIMARY KEY, name text NOT NULL, color text)");
  std::cout << "created table fruit" << std::endl;

  // Parameters $1.. travel typed; Param::null() is SQL NULL.
  const std::string insert = "INSERT INTO fruit (id, name, color) VALUES ($1, $2, $3)";
  int64_t inserted = db.execute(insert, {1, "apple", "red"}).rowsAffected;
  inserted += db.execute(insert, {2, "banana", Param::null()}).rowsAffected;
  std::cout << "inserted " << inserted << " rows" << std::endl;

  {
    Transaction txn(db);
    db.execute(insert, {3, "cherry", "dark red"});
    db.execute("UPDATE fruit SET color = $1 WHERE id = $2", {"green", 1});
    txn.commit();
  }
  std::cout << "committed a transaction: cherry added, apple now green" << std::endl;

  db.begin();
  db.execute(insert, {4, "durian", "yellow"});
  db.execute("DELETE FROM fruit WHERE id = $1", {2});
  db.rollback();
  std::cout << "rolled back a transaction: no durian, banana kept" << std::endl;

  // One request, one replicated log entry; atomic: all or nothing.
  auto results = db.batch(
      {
          {insert, {5, "elderberry", "purple"}},
          {insert, {6, "fig", Param::null()}},
          {"UPDATE fruit SET color = upper(color) WHERE id = $1", {3}},
      },
      true);
  int64_t changed = 0;
  for (const auto& r : results) changed += r.rows->rowsAffected;  // atomic: a failure threw
  std::cout << "batch of " << results.size() << " statements: " << changed << " rows changed" << std::endl;

  Rows rows = db.execute("SELECT id, name, color FROM fruit ORDER BY id");
  for (const auto& row : rows.rows) {
    std::cout << "row " << row[0].value_or("NULL") << " " << row[1].value_or("NULL") << " "
              << row[2].value_or("NULL") << std::endl;
  }

  try {
    db.execute(insert, {1, "apricot", "orange"});
    std::cout << "constraint violation: none (unexpected)" << std::endl;
  } catch (const Error& e) {
    // PostgreSQL's message may go on with a DETAIL line; its first line says enough here.
    std::string firstLine = e.message().substr(0, e.message().find('\n'));
    std::cout << "constraint violation: SQLSTATE " << e.sqlstate() << " (error code " << e.errorCode()
              << "): " << firstLine << std::endl;
  }
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " HOST:PORT[,HOST:PORT...]" << std::endl;
    return 2;
  }
  // The Thrift library logs every failed socket to stderr; the client reports what matters in its
  // exceptions (a dead replica it skipped is no error).
  apache::thrift::GlobalOutput.setOutputFunction([](const char*) {});
  try {
    Client db(splitList(argv[1]));
    tour(db);
    db.close();
    std::cout << "closed" << std::endl;
    std::cout << "done" << std::endl;
    return 0;
  } catch (const Error& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 1;
  }
}
